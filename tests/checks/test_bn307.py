"""BN307 eps-as-momentum: a batch-norm eps that cannot be an epsilon (0.1 or more, or the
layer's channel count), reported at the eps value; its unsafe fix moves the value out of
the eps slot."""

from __future__ import annotations

import pytest

from bnlint.diagnostics import Applicability
from bnlint.engine import fix_source, lint_source

from .conftest import assert_matches_markers, dedent, lint_package, package_markers

CODE = "BN307"

POSITIVE = [
    pytest.param(
        """
        import torch.nn as nn


        class Generator(nn.Module):
            def __init__(self, latent: int) -> None:
                super().__init__()

                def block(cin, cout):
                    return [nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout, 0.8), nn.LeakyReLU(0.2)]  # expect: BN307

                self.net = nn.Sequential(*block(latent, 128), *block(128, 256), nn.Linear(256, 784), nn.Tanh())

            def forward(self, z):
                return self.net(z)
        """,
        id="gan-positional-keras-momentum-in-a-nested-helper",
    ),
    pytest.param(
        """
        from torch import nn as tnn

        norm = tnn.BatchNorm2d(64, eps=0.9)  # expect: BN307
        """,
        id="keyword-eps-aliased-module",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def make_bn(planes):
            return nn.BatchNorm2d(planes, planes)  # expect: BN307
        """,
        id="eps-is-the-channel-count",
    ),
    pytest.param(
        """
        import torch.nn as nn

        BN_MOMENTUM = 0.99


        def norm(channels, momentum=BN_MOMENTUM):
            return nn.BatchNorm2d(channels, momentum)  # expect: BN307
        """,
        id="parameter-defaulting-to-a-constant",
    ),
    pytest.param(
        """
        from functools import partial

        import torch.nn as nn

        norm_layer = partial(nn.BatchNorm2d, eps=0.5)  # expect: BN307
        """,
        id="partial",
    ),
    pytest.param(
        """
        import tensorflow as tf

        bn = tf.keras.layers.BatchNormalization(epsilon=0.9)  # expect: BN307
        """,
        id="keras-epsilon",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def port(model: nn.Module) -> None:
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eps = 0.99  # expect: BN307
        """,
        id="attribute-write",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        import torch.nn as nn

        a = nn.BatchNorm2d(64, 1e-3)
        b = nn.BatchNorm2d(64, eps=0.01, momentum=0.01)
        c = nn.BatchNorm1d(32, eps=1e-5, momentum=0.1)
        """,
        id="legitimate-eps-up-to-1e-2",
    ),
    pytest.param(
        """
        import torch.nn as nn

        ln = nn.LayerNorm(64, eps=0.5)
        gn = nn.GroupNorm(8, 64, 0.5)
        """,
        id="other-norms-not-batch-norm",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def norm(channels, eps):
            return nn.BatchNorm2d(channels, eps)
        """,
        id="unknown-eps",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def norm(channels, width):
            return nn.BatchNorm2d(channels, momentum=0.1, eps=1e-5), nn.BatchNorm2d(width)
        """,
        id="near-miss-channel-count-elsewhere",
    ),
    pytest.param(
        """
        from tensorflow import keras

        bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1.001e-5)
        """,
        id="keras-usual",
    ),
    pytest.param(
        """
        import tensorflow as tf

        # A numerics test: both slots named, eps=1 keeps the expected values round.
        bn = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1.0, name="bn")
        """,
        id="near-miss-both-slots-named-by-the-author",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_at_the_eps_value(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)


def test_anchor_and_message_name_the_momentum_meant() -> None:
    (finding,) = lint_source("import torch.nn as nn\nbn = nn.BatchNorm2d(128, 0.8)\n")
    assert (finding.code, finding.line, finding.column) == (CODE, 2, len("bn = nn.BatchNorm2d(128, ") + 1)
    assert finding.severity.value == "error"
    assert "eps=0.8" in finding.message and "momentum=0.2" in finding.message


def test_channel_count_names_no_momentum() -> None:
    (finding,) = lint_source("import torch.nn as nn\ndef f(n):\n    return nn.BatchNorm2d(n, n)\n")
    assert "channel count" in finding.message and "momentum" not in finding.message


FIXES = [
    pytest.param("nn.BatchNorm2d(128, 0.8)", "nn.BatchNorm2d(128, momentum=0.2)", id="keras-momentum-ported"),
    pytest.param("nn.BatchNorm1d(64, eps=0.1)", "nn.BatchNorm1d(64, momentum=0.1)", id="torch-momentum"),
    pytest.param("nn.BatchNorm2d(64, 0.9, momentum=0.01)", "nn.BatchNorm2d(64, momentum=0.01)",
                 id="momentum-already-given"),
    pytest.param("nn.BatchNorm2d(64, eps=3,\n)", "nn.BatchNorm2d(64,\n)", id="not-a-momentum-trailing-comma"),
    pytest.param("nn.BatchNorm2d(\n    64,\n    0.8,  # ported\n)",
                 "nn.BatchNorm2d(\n    64,\n    momentum=0.2,  # ported\n)", id="one-per-line-comment-kept"),
    pytest.param("keras.layers.BatchNormalization(epsilon=0.99)", "keras.layers.BatchNormalization(momentum=0.99)",
                 id="keras"),
    pytest.param("keras.layers.BatchNormalization(epsilon=0.01 * 10)",
                 "keras.layers.BatchNormalization(momentum=1 - 0.01 * 10)", id="keras-pytorch-momentum-expression"),
]


@pytest.mark.parametrize(("before", "after"), FIXES)
def test_fix_moves_the_value_out_of_the_eps_slot(before: str, after: str) -> None:
    header = "import torch.nn as nn\nfrom tensorflow import keras\n\nbn = "
    fixed = fix_source(header + before + "\n", unsafe=True)
    assert fixed == header + after + "\n"
    assert fix_source(fixed, unsafe=True) == fixed, "not idempotent"
    assert CODE not in {d.code for d in lint_source(fixed)}


def test_fix_is_unsafe() -> None:
    source = "import torch.nn as nn\nbn = nn.BatchNorm2d(128, 0.8)\n"
    (finding,) = lint_source(source)
    assert finding.fix is not None and finding.fix.applicability is Applicability.UNSAFE
    assert fix_source(source) == source


@pytest.mark.parametrize("source", [
    "import torch.nn as nn\nbn = nn.BatchNorm2d(64, 0.9, 0.1)\n",  # removing eps would shift the momentum
    dedent("""
        import torch.nn as nn

        for m in nn.Sequential(nn.BatchNorm2d(3)).modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = 0.9
        """),
])
def test_no_fix_where_moving_the_value_is_not_local(source: str) -> None:
    (finding,) = [d for d in lint_source(source) if d.code == CODE]
    assert finding.fix is None


def test_constant_from_another_file_in_the_eps_slot(tmp_path) -> None:
    modules = {
        "defaults": """
            BN_MOMENTUM = 0.9
            """,
        "blocks": """
            import torch.nn as nn

            from .defaults import BN_MOMENTUM


            def conv_bn(cin, cout):
                return nn.Sequential(nn.Conv2d(cin, cout, 3, bias=False), nn.BatchNorm2d(cout, BN_MOMENTUM))  # expect: BN307
            """,
    }
    assert lint_package(tmp_path, modules, {CODE}) == package_markers(modules)
