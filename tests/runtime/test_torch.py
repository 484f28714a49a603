"""The runtime checker on real PyTorch models: every rule confirmed, a static false positive
of each refuted, and each fix verified (BN304's checkpoint migration included). One worker
run checks all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Checked, line_of, verify_sources

pytest.importorskip("torch")

SHAPES = """
    import torch.nn as nn


    class ConvNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1, bias=False),
                nn.BatchNorm2d(4),
            )

        def forward(self, x):
            return self.body(x)


    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(12, 16, bias=False)
            self.bn = nn.BatchNorm2d(16)

        def forward(self, x):
            return self.bn(self.fc(x))
"""

FITS = """
    import torch.nn as nn


    def build_model():
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),  # finding: BN302
        )
"""

BIAS = """
    import torch
    import torch.nn as nn


    class Stem(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.fc = nn.Linear(8, 6)
            self.bn1 = nn.BatchNorm1d(6)

        def forward(self, x):
            x = torch.relu(self.bn(self.conv(x)))
            x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
            return self.bn1(self.fc(x))
"""

RESIDUAL = """
    import torch.nn as nn


    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)  # finding: BN304
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y
"""

# A static false positive the rule's conventions already avoid, asserted here as a finding:
# the view spreads each of the Linear's features over channels *and* positions, so batch norm
# removes only part of its bias and shifting the bias moves the output.
SPREAD_BY_VIEW = """
    import torch.nn as nn


    class Generator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(16, 8 * 4 * 4)  # finding: BN304
            self.bn = nn.BatchNorm2d(8)

        def forward(self, z):
            return self.bn(self.fc(z).view(-1, 8, 4, 4))
"""

DROPOUT = """
    import torch
    import torch.nn as nn


    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(10, 16)
            self.drop = nn.Dropout(0.5)
            self.bn = nn.BatchNorm1d(16)
            self.quiet = nn.Dropout(0.0)
            self.bn2 = nn.BatchNorm1d(16)  # finding: BN305

        def forward(self, x):
            x = self.bn(self.drop(torch.relu(self.fc(x))))
            return self.bn2(self.quiet(x))
"""

MOMENTUM = """
    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, bias=False)
            self.bn = nn.BatchNorm2d(8, momentum=0.9)
            self.later = nn.BatchNorm2d(8, momentum=0.9)
            self.later.momentum = 0.1  # set after construction: the static value is not the one used

        def forward(self, x):
            return self.later(self.bn(self.conv(x)))
"""

EPS = """
    import torch.nn as nn


    class Generator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, bias=False)
            self.bn = nn.BatchNorm2d(8, 0.8)  # a Keras momentum in the eps slot
            self.later = nn.BatchNorm2d(8, 0.9)
            self.later.eps = 1e-5  # set after construction: the static value is not the one used

        def forward(self, x):
            return self.later(self.bn(self.conv(x)))
"""

MODES = """
    import torch.nn as nn


    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))

        def forward(self, x):
            return self.net(x)


    def predict(model, x):
        return model(x)  # finding: BN101


    def fit(model, batches):
        for batch in batches:
            model.eval()  # finding: BN103
            model(batch)


    BATCH_SIZE = 1  # finding: BN201
"""

CONV_MODES = """
    import torch.nn as nn


    def make_model():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())


    BATCH_SIZE = 1  # finding: BN201
"""

UNUSED_NORM = """
    import torch.nn as nn


    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(10, 3)
            self.bn = nn.BatchNorm1d(3)  # defined, never called

        def forward(self, x):
            return self.fc(x)


    def predict(model, x):
        return model(x)  # finding: BN101


    BATCH_SIZE = 1  # finding: BN201
"""

RECURRENT = """
    import torch
    import torch.nn as nn


    class Recurrent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(6, 8)
            self.bn = nn.BatchNorm1d(8)

        def forward(self, x):
            h = torch.zeros(x.shape[0], 8)
            for t in range(x.shape[1]):
                h = torch.tanh(self.bn(self.inp(x[:, t])) + h)  # finding: BN301
            return h


    def example_input():
        return torch.zeros(4, 5, 6)
"""

ONCE = """
    import torch.nn as nn


    def build_model():
        return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8))  # finding: BN301
"""

MLP = """
    import torch.nn as nn


    def build_model():
        return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))


    def predict(model, x):
        return model(x)  # finding: BN101
"""

TRAINING = """
    import torch
    import torch.nn as nn


    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(10, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))

        def forward(self, x):
            return self.net(x)


    def evaluate(x):
        model = Classifier()
        with torch.no_grad():
            return model(x)


    def fit(loader, epochs: int):
        model = Classifier()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(epochs):
            for x, y in loader:
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                model(x)
"""

CELL = """
    import torch
    import torch.nn as nn


    class NormedCell(nn.RNNCellBase):
        def __init__(self, input_size: int = 16, hidden_size: int = 32) -> None:
            super().__init__(input_size, hidden_size, bias=False, num_chunks=1)
            self.ih = nn.Linear(input_size, hidden_size, bias=False)
            self.hh = nn.Linear(hidden_size, hidden_size, bias=False)
            self.bn = nn.BatchNorm1d(hidden_size)  # finding: BN301

        def forward(self, x, h):
            return torch.tanh(self.bn(self.ih(x)) + self.hh(h))
"""

STEP_NORMED = """
    import torch
    import torch.nn as nn


    class StepNormed(nn.Module):
        \"\"\"Batch norm per time step (Cooijmans et al.): each step keeps its own statistics.\"\"\"

        def __init__(self, steps: int = 8) -> None:
            super().__init__()
            self.ih = nn.Linear(16, 32, bias=False)
            self.bns = nn.ModuleList(nn.BatchNorm1d(32) for _ in range(steps))  # finding: BN301

        def forward(self, x):
            h = x.new_zeros(x.shape[0], 32)
            for t in range(x.shape[1]):
                h = torch.tanh(self.bns[t](self.ih(x[:, t])) + h)
            return h


    def example_input():
        return torch.zeros(4, 8, 16)
"""

TOKENS = """
    import torch.nn as nn


    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(50, 8)
            self.bn = nn.BatchNorm1d(8)

        def forward(self, ids):
            return self.bn(self.embed(ids).transpose(1, 2))


    def predict(model, ids):
        return model(ids)  # finding: BN101
"""

KEYWORDS = """
    import torch
    import torch.nn as nn


    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(10, 16, bias=False)
            self.bn = nn.BatchNorm1d(16)

        def forward(self, x, mask):
            return self.bn(self.fc(x * mask))


    def example_inputs():
        return {"x": torch.randn(4, 10), "mask": torch.ones(4, 10)}


    def predict(model, x, mask):
        return model(x, mask)  # finding: BN101
"""

SOURCES = {"spread_by_view.py": SPREAD_BY_VIEW, "cell.py": CELL, "step_normed.py": STEP_NORMED, "tokens.py": TOKENS, "keywords.py": KEYWORDS,
           "shapes.py": SHAPES, "fits.py": FITS, "bias.py": BIAS, "residual.py": RESIDUAL, "dropout.py": DROPOUT,
           "momentum.py": MOMENTUM, "eps.py": EPS, "modes.py": MODES, "conv_modes.py": CONV_MODES, "unused_norm.py": UNUSED_NORM,
           "recurrent.py": RECURRENT, "once.py": ONCE, "training.py": TRAINING,
           "mlp.py": MLP}


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    return verify_sources(tmp_path_factory.mktemp("torch_models"), SOURCES)


def test_models_are_discovered_with_their_input_shape(checked: Checked) -> None:
    shapes = {(Path(m["path"]).name, m["name"]): (tuple(m["input_shape"]), m["input_source"])
              for m in checked.verification.models}
    assert shapes[("shapes.py", "ConvNet()")] == ((8, 3, 32, 32), "inferred from the first layer, Conv2d(3, …)")
    assert shapes[("shapes.py", "Head()")] == ((8, 12), "inferred from the first layer, Linear(12, …)")
    assert shapes[("recurrent.py", "Recurrent()")] == ((4, 5, 6), "from example_input()")
    assert ("fits.py", "build_model()") in shapes
    assert shapes[("cell.py", "NormedCell()")] == ((8, 16), "inferred from the first layer, Linear(16, …); "
                                                            "h of hidden_size = 32")


def test_token_ids_for_an_embedding_and_keyword_inputs_from_example_inputs(checked: Checked) -> None:
    inputs = {Path(m["path"]).name: (m["inputs"], m["input_source"]) for m in checked.verification.models}
    assert inputs["tokens.py"] == ("(8, 16) int", "token ids for the first layer, Embedding(50, …)")
    assert inputs["keywords.py"] == ("x=(4, 10), mask=(4, 10)", "from example_inputs()")
    for name, source in (("tokens.py", TOKENS), ("keywords.py", KEYWORDS)):
        assert checked.runtime(name, line_of(source, "finding: BN101"), "BN101")["verdict"] == "confirmed"


def test_bn302_forward_fails_in_the_named_module_and_the_fix_mends_it(checked: Checked) -> None:
    runtime = checked.runtime("shapes.py", line_of(SHAPES, "BatchNorm2d(4)"), "BN302")
    assert runtime["verdict"] == "confirmed"
    assert "BatchNorm2d 'body.1' (line 9)" in runtime["evidence"]
    assert "running_mean should contain 8 elements not 4" in runtime["evidence"]
    assert runtime["fix_verified"] is True


def test_bn303_rank_mismatch_confirmed_and_fixed(checked: Checked) -> None:
    runtime = checked.runtime("shapes.py", line_of(SHAPES, "BatchNorm2d(16)"), "BN303")
    assert runtime["verdict"] == "confirmed"
    assert "BatchNorm2d 'bn'" in runtime["evidence"] and "4D input" in runtime["evidence"]
    assert runtime["fix_verified"] is True


def test_bn302_false_positive_is_refuted(checked: Checked) -> None:
    runtime = checked.runtime("fits.py", line_of(FITS, "BatchNorm2d(8)"), "BN302")
    assert runtime["verdict"] == "not-reproduced"
    assert runtime["fix_verified"] is None


@pytest.mark.parametrize("needle", ["nn.Conv2d(3, 8, 3, padding=1)", "nn.Linear(8, 6)"])
def test_bn304_bias_cancelled_fix_verified_and_checkpoint_migrated(checked: Checked, needle: str) -> None:
    runtime = checked.runtime("bias.py", line_of(BIAS, needle), "BN304")
    numbers = runtime["numbers"]
    assert runtime["verdict"] == "confirmed", runtime["evidence"]
    assert numbers["bias_shift_effect"] < 1e-4
    assert runtime["fix_verified"] is True
    assert numbers["train_max_difference"] < 1e-4
    assert numbers["parameters_after"] < numbers["parameters_before"]
    # The round trip: a folded checkpoint keeps eval outputs; dropping the bias alone does not.
    assert numbers["eval_max_difference_migrated"] < 1e-4
    assert numbers["eval_max_difference_bias_dropped"] > 1e-2
    assert list(numbers["migration"].values())[0] in ("bn.running_mean", "bn1.running_mean")


def test_bn304_false_positive_is_refuted(checked: Checked) -> None:
    runtime = checked.runtime("residual.py", line_of(RESIDUAL, "nn.Conv2d"), "BN304")
    assert runtime["verdict"] == "not-reproduced"
    assert "changes the train-mode output" in runtime["evidence"]


def test_bn304_linear_spread_over_channels_and_positions_by_view_is_refuted(checked: Checked) -> None:
    runtime = checked.runtime("spread_by_view.py", line_of(SPREAD_BY_VIEW, "finding: BN304"), "BN304")
    assert runtime["verdict"] == "not-reproduced", runtime["evidence"]
    assert runtime["numbers"]["bias_shift_effect"] > 0.5  # the bias is not cancelled: it moves the output
    assert runtime["fix_verified"] is None


def test_bn305_variance_shift_measured(checked: Checked) -> None:
    runtime = checked.runtime("dropout.py", line_of(DROPOUT, "self.bn = "), "BN305")
    assert runtime["verdict"] == "confirmed"
    assert runtime["numbers"]["ratio"] > 1.2
    assert runtime["fix_verified"] is None


def test_bn305_dropout_that_drops_nothing_is_refuted(checked: Checked) -> None:
    runtime = checked.runtime("dropout.py", line_of(DROPOUT, "self.bn2 = "), "BN305")
    assert runtime["verdict"] == "not-reproduced"
    assert runtime["numbers"]["ratio"] == pytest.approx(1.0)


def test_bn306_running_statistics_follow_the_last_batch_and_the_fix_averages(checked: Checked) -> None:
    runtime = checked.runtime("momentum.py", line_of(MOMENTUM, "self.bn = "), "BN306")
    numbers = runtime["numbers"]
    assert runtime["verdict"] == "confirmed"
    assert numbers["batch_weight_measured"] == pytest.approx(0.9, abs=1e-4)
    assert numbers["batch_weight_after_fix"] == pytest.approx(0.1, abs=1e-4)
    # Around a known true mean, the momentum as written follows each noisy batch; the intended one averages.
    assert numbers["steps"] >= 60 and numbers["true_mean"] == 2.0
    assert numbers["running_mean_error_as_written"] > 2 * numbers["running_mean_error_intended"]
    assert runtime["fix_verified"] is True


def test_bn307_large_eps_barely_normalizes_and_the_fix_restores_it(checked: Checked) -> None:
    runtime = checked.runtime("eps.py", line_of(EPS, "self.bn = "), "BN307")
    numbers = runtime["numbers"]
    assert runtime["verdict"] == "confirmed", runtime["evidence"]
    assert (numbers["eps"], numbers["default_eps"]) == (pytest.approx(0.8), pytest.approx(1e-5))
    assert numbers["output_variance"] < 0.9 * numbers["output_variance_default_eps"]
    assert numbers["output_variance_default_eps"] == pytest.approx(1.0, abs=1e-3)
    assert runtime["fix_verified"] is True


def test_bn307_eps_overridden_after_construction_is_refuted(checked: Checked) -> None:
    runtime = checked.runtime("eps.py", line_of(EPS, "self.later = "), "BN307")
    assert runtime["verdict"] == "not-reproduced"
    assert runtime["numbers"]["output_variance"] == pytest.approx(runtime["numbers"]["output_variance_default_eps"])


def test_bn306_momentum_overridden_after_construction_is_refuted(checked: Checked) -> None:
    runtime = checked.runtime("momentum.py", line_of(MOMENTUM, "self.later = "), "BN306")
    assert runtime["verdict"] == "not-reproduced"
    assert runtime["numbers"]["batch_weight_measured"] == pytest.approx(0.1, abs=1e-4)


@pytest.mark.parametrize("code", ["BN101", "BN103"])
def test_train_mode_makes_outputs_batch_dependent_and_eval_fixes_it(checked: Checked, code: str) -> None:
    runtime = checked.runtime("modes.py", line_of(MODES, f"finding: {code}"), code)
    assert runtime["verdict"] == "confirmed"
    assert runtime["numbers"]["spread_train"] > 1e-3
    assert runtime["numbers"]["spread_eval"] < 1e-5
    assert runtime["fix_verified"] is True
    assert runtime["model"] == "Classifier()"


def test_static_bn101_and_bn103_end_to_end(checked: Checked) -> None:
    missing_eval = checked.runtime("training.py", line_of(TRAINING, "return model(x)"), "BN101")
    assert missing_eval["verdict"] == "confirmed" and missing_eval["fix_verified"] is True
    left_in_eval = checked.runtime("training.py", line_of(TRAINING, "model.eval()"), "BN103")
    assert left_in_eval["verdict"] == "confirmed" and left_in_eval["fix_verified"] is True
    assert left_in_eval["numbers"]["running_mean_step_eval"] == 0.0
    assert left_in_eval["numbers"]["running_mean_step_train"] > 0.0


def test_bn101_model_without_batch_norm_in_forward_is_refuted(checked: Checked) -> None:
    runtime = checked.runtime("unused_norm.py", line_of(UNUSED_NORM, "finding: BN101"), "BN101")
    assert runtime["verdict"] == "not-reproduced"


def test_bn101_model_without_batch_norm_is_refuted(checked: Checked) -> None:
    runtime = checked.runtime("mlp.py", line_of(MLP, "finding: BN101"), "BN101")
    assert runtime["verdict"] == "not-reproduced"
    assert runtime["evidence"] == "build_model() contains no batch norm."


def test_bn201_batch_of_one_raises_after_linear(checked: Checked) -> None:
    runtime = checked.runtime("modes.py", line_of(MODES, "finding: BN201"), "BN201")
    assert runtime["verdict"] == "confirmed"
    assert "Expected more than 1 value per channel when training" in runtime["evidence"]
    assert runtime["numbers"]["remedy_runs"] is True  # a batch of two trains
    assert runtime["fix_verified"] is None  # the rule has no fix


def test_bn201_batch_of_one_after_conv_is_instance_normalization(checked: Checked) -> None:
    runtime = checked.runtime("conv_modes.py", line_of(CONV_MODES, "finding: BN201"), "BN201")
    assert runtime["verdict"] == "confirmed"
    assert "instance normalization" in runtime["evidence"]


def test_bn201_without_batch_norm_in_forward_is_refuted(checked: Checked) -> None:
    runtime = checked.runtime("unused_norm.py", line_of(UNUSED_NORM, "finding: BN201"), "BN201")
    assert runtime["verdict"] == "not-reproduced"


def test_bn301_one_batch_norm_runs_at_every_time_step(checked: Checked) -> None:
    runtime = checked.runtime("recurrent.py", line_of(RECURRENT, "finding: BN301"), "BN301")
    assert runtime["verdict"] == "confirmed"
    assert runtime["numbers"]["calls_per_sequence"] == 5
    assert runtime["numbers"]["layer_norm_runs"] is True


def test_bn301_cell_with_a_hidden_state_is_driven_over_time_steps(checked: Checked) -> None:
    runtime = checked.runtime("cell.py", line_of(CELL, "self.bn = "), "BN301")
    numbers = runtime["numbers"]
    assert runtime["verdict"] == "confirmed", runtime["evidence"]
    assert "while bnlint drives the cell over 8 time steps" in runtime["evidence"]
    assert numbers["calls_per_sequence"] == 8
    # The steps' inputs differ, so one set of running statistics is off-centre for most of them.
    assert numbers["largest_eval_offset"] > 0.5
    assert max(numbers["step_input_means"]) - min(numbers["step_input_means"]) > 0.5 * numbers["largest_eval_offset"]


def test_bn301_batch_norm_per_time_step_is_refuted(checked: Checked) -> None:
    runtime = checked.runtime("step_normed.py", line_of(STEP_NORMED, "finding: BN301"), "BN301")
    assert runtime["verdict"] == "not-reproduced", runtime["evidence"]
    assert runtime["numbers"]["calls_per_sequence"] == 1


def test_bn301_batch_norm_called_once_is_refuted(checked: Checked) -> None:
    runtime = checked.runtime("once.py", line_of(ONCE, "finding: BN301"), "BN301")
    assert runtime["verdict"] == "not-reproduced"


def test_plots_come_back_for_the_html_report(checked: Checked) -> None:
    kinds = {plot["kind"] for plots in checked.verification.plots.values() for plot in plots}
    assert {"lines", "strip", "bars"} <= kinds


def test_checkpoint_migration_keeps_eval_outputs() -> None:
    """The migration users run on their own checkpoints (what BN304's fix verification proves)."""
    import torch
    from torch import nn

    from bnlint.runtime.torch_backend import migrate_state_dict

    torch.manual_seed(0)
    trained = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with torch.no_grad():
        trained[0].bias.add_(1.0)
        for _ in range(3):
            trained(torch.randn(8, 3, 8, 8))  # running statistics that contain the bias
    fixed = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4))
    fixed.load_state_dict(migrate_state_dict(trained.state_dict(), {"0": "1"}))  # strict: keys match
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(trained.eval()(x), fixed.eval()(x), atol=1e-5)


def test_discovery_calls_factories_but_never_training_or_loading_functions() -> None:
    import types

    from torch import nn

    from bnlint.runtime.loader import candidates

    module = types.ModuleType("user_module")
    source = """
import torch.nn as nn
class Net(nn.Module):
    pass
class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
def build_model():
    return Net()
def train_model():
    raise AssertionError("discovery must not train")
def load_data():
    raise AssertionError("discovery must not load data")
head = nn.Linear(2, 2)
"""
    exec(compile(source, "user_module.py", "exec"), module.__dict__)  # noqa: S102
    found = candidates(module, lambda value: isinstance(value, nn.Module), lambda cls: issubclass(cls, nn.Module))
    assert [candidate.name for candidate in found] == ["Net()", "build_model()", "head"]
