"""BN102 mode-switch-not-called: `model.eval` / `model.train` as a statement, reported at
the attribute."""

from __future__ import annotations

import pytest

from bnlint.engine import fix_source

from .conftest import assert_matches_markers, dedent

CODE = "BN102"

POSITIVE = [
    pytest.param(
        """
        import torch


        def evaluate(model, loader):
            model.eval  # expect: BN102
            with torch.no_grad():
                return [model(x) for x, _ in loader]
        """,
        id="parameter-eval",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Trainer:
            def __init__(self, model):
                self.model = model

            def train_epoch(self, loader):
                self.model.train  # expect: BN102
                for batch in loader:
                    self.model(batch)
        """,
        id="trainer-attribute-train",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm1d(4)

            def freeze(self):
                self.eval  # expect: BN102
        """,
        id="self-eval-in-a-module-method",
    ),
    pytest.param(
        """
        import torch
        import torchvision

        model = torch.nn.DataParallel(torchvision.models.resnet18())  # expect: BN204
        model.module.eval  # expect: BN102
        """,
        id="wrapped-module",
    ),
    pytest.param(
        """
        import torch


        def run(models, x):
            for m in models:
                m.eval  # expect: BN102
            with torch.no_grad():
                return [m(x) for m in models]
        """,
        id="loop-variable",
    ),
    pytest.param(
        """
        import torch.nn as nn

        net = nn.Sequential(nn.Linear(4, 4))
        if True:
            net.eval  # expect: BN102
        """,
        id="model-without-batch-norm-still-a-no-op",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        def evaluate(model, loader):
            model.eval()
            return [model(x) for x, _ in loader]
        """,
        id="called",
    ),
    pytest.param(
        """
        def evaluate(model):
            switch = model.eval
            switch()
        """,
        id="bound-method-stored-and-called",
    ),
    pytest.param(
        """
        def restore(model, was_training):
            (model.train if was_training else model.eval)()
        """,
        id="method-chosen-then-called",
    ),
    pytest.param(
        """
        def evaluate(model):
            assert model.eval is not None
        """,
        id="attribute-in-an-expression",
    ),
    pytest.param(
        """
        def evaluate(model):
            model.train(False)
        """,
        id="train-false",
    ),
    pytest.param(
        """
        def evaluate(config):
            config.evaluate
        """,
        id="other-attribute",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_the_attribute(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)


def test_fix_adds_the_call_and_keeps_the_comment() -> None:
    before = dedent("""
        import torch


        def evaluate(model, loader):
            model.eval  # switch off dropout
            with torch.no_grad():
                return [model(x) for x, _ in loader]
        """)
    after = fix_source(before)
    assert after == before.replace("model.eval  #", "model.eval()  #")
    assert fix_source(after) == after
