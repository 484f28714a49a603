"""`bnlint examples/` (the README's first command) reports exactly the findings the
examples are written to show: every rule of the release, in each framework it applies to,
and nothing in the correct code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bnlint import registry
from bnlint.config import Config
from bnlint.engine import RunOptions, RunResult, lint_paths

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

# (file, notebook code cell or None, line, code)
EXPECTED = {
    ("broken_syntax.py", None, 7, "BN000"),  # the missing comma after BatchNorm2d(64)
    ("distributed_finetune.py", None, 22, "BN106"),  # a frozen stage left in train mode
    ("distributed_finetune.py", None, 47, "BN204"),  # DDP around a ResNet-50 without SyncBatchNorm
    ("distributed_finetune.py", None, 49, "BN401"),  # SGD weight decay over all parameters
    ("keras_functional.py", None, 9, "BN304"),  # Conv2D with its default bias before BN
    ("keras_functional.py", None, 13, "BN306"),  # BatchNormalization(momentum=0.1)
    ("keras_functional.py", None, 17, "BN305"),  # BN right after Dropout(0.3)
    ("keras_functional.py", None, 26, "BN307"),  # BatchNormalization(epsilon=0.99), meant as a momentum
    ("gan_generator.py", None, 14, "BN307"),  # BatchNorm1d(out_feat, 0.8): eps=0.8, ported from Keras
    ("keras_subclassed.py", None, 11, "BN302"),  # default axis=-1 on channels_first data
    ("keras_subclassed.py", None, 13, "BN304"),  # Dense(128) feeding fc_bn in call()
    ("maxvit_block.py", None, 9, "BN306"),  # partial(nn.BatchNorm2d, momentum=0.99)
    ("notebook.ipynb", 2, 2, "BN304"),  # Conv2d with its default bias, in the 2nd code cell
    ("projection_head.py", None, 14, "BN303"),  # BatchNorm2d after Linear, in an OrderedDict
    ("projection_head.py", None, 27, "BN305"),  # self.bn fed by self.drop in forward()
    ("recurrent.py", None, 18, "BN301"),  # bn_ih in BNLSTMCell, called at every step of the loop
    ("recurrent.py", None, 19, "BN301"),  # bn_hh, same cell
    ("recurrent.py", None, 76, "BN301"),  # BatchNormalization in a Keras cell with state_size
    ("resnet.py", None, 12, "BN304"),  # the biased conv inside conv_bn()
    ("resnet.py", None, 25, "BN001"),  # a stale BN304 suppression on a conv that has bias=False
    ("resnet.py", None, 40, "BN302"),  # BatchNorm2d(32) after Conv2d(3, STEM_CHANNELS=64)
    ("verify_torch.py", None, 11, "BN304"),  # the biased first Conv2d (bnlint verify confirms it)
    ("verify_torch.py", None, 12, "BN306"),  # momentum=0.9
    ("verify_torch.py", None, 15, "BN302"),  # BatchNorm2d(32) after 64 channels
    ("verify_torch.py", None, 24, "BN305"),  # BatchNorm1d after Dropout(0.5)
    ("keras_training.py", None, 23, "BN104"),  # self(images) in train_step without training=True
    ("keras_training.py", None, 31, "BN107"),  # training=True in test_step
    ("keras_training.py", None, 39, "BN105"),  # pretrained base(inputs) without training=False, unfrozen later
    ("keras_training.py", None, 47, "BN203"),  # fit(batch_size=4)
    ("keras_training.py", None, 48, "BN201"),  # a tf.data pipeline batched by one, then fit
    ("keras_training.py", None, 95, "BN107"),  # MC dropout with training=True: batch norm samples too
    ("train_batches.py", None, 59, "BN202"),  # 1025 samples in batches of 64, no drop_last
    ("train_batches.py", None, 69, "BN203"),  # a segmentation head trained 2 images at a time
    ("train_batches.py", None, 81, "BN201"),  # DataLoader(sample_set): the default batch size is 1
    ("train_batches.py", None, 86, "BN201"),  # torch.randn(1, ...) fed in train mode
    ("training/engine.py", None, 15, "BN103"),  # validate()'s eval, never undone in train.py's epoch loop
    ("training/engine.py", None, 25, "BN101"),  # predict() called by train.py's demo() with a train-mode model
    ("training/train.py", None, 22, "BN102"),  # `model.eval` without the call
}


@pytest.fixture(scope="module")
def run() -> RunResult:
    # BN001 is opt-in (`--report-unused-noqa`): named here so that its example counts.
    return lint_paths([str(EXAMPLES)], Config(root=REPO, extend_select=("BN001",)), RunOptions(jobs=1, use_cache=False))


def _example_name(path: str) -> str:
    return Path(path).resolve().relative_to(EXAMPLES).as_posix()


def _frameworks_imported(name: str) -> set[str]:
    # Also matches the quoted source lines of a notebook's JSON.
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    modules = set(re.findall(r'^\s*"?(?:import|from)\s+(\w+)', text, re.M))
    return {"torch"} & modules | ({"keras"} if modules & {"keras", "tensorflow"} else set())


def test_examples_report_exactly_the_documented_findings(run: RunResult) -> None:
    found = {
        (_example_name(diagnostic.path), diagnostic.cell, diagnostic.line, diagnostic.code)
        for result in run.results
        for diagnostic in result.diagnostics
    }
    assert found == EXPECTED


def test_every_example_file_is_checked(run: RunResult) -> None:
    checked = {_example_name(result.path) for result in run.results}
    assert checked == {path.relative_to(EXAMPLES).as_posix() for path in EXAMPLES.rglob("*")
                       if path.suffix in (".py", ".ipynb")}
    assert not [result.path for result in run.results if result.error]


@pytest.mark.parametrize("code", registry.all_rules())
def test_every_rule_is_shown_in_each_of_its_frameworks(code: str) -> None:
    shown_in = set().union(*(_frameworks_imported(name) for name, _, _, found in EXPECTED if found == code))
    wanted = set(registry.rule_info(code).frameworks) - {"any"}
    assert any(found == code for *_, found in EXPECTED), f"no example shows {code}"
    assert wanted <= shown_in
