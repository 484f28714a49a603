"""BN202 last-batch-of-one: a training DataLoader whose dataset length leaves one sample for
the last batch, without drop_last=True; reported at the DataLoader call, fixed with
drop_last=True."""

from __future__ import annotations

import pytest

from bnlint.engine import fix_source, lint_source

from .conftest import assert_matches_markers, dedent

CODE = "BN202"

MODEL = """
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset, random_split

model = nn.Sequential(nn.Linear(16, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.Adam(model.parameters())


def train(loader):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
"""

POSITIVE = [
    pytest.param(
        MODEL + """
dataset = TensorDataset(torch.randn(1025, 16), torch.randn(1025, 1))
train(DataLoader(dataset, batch_size=64, shuffle=True))  # expect: BN202
""",
        id="tensor-dataset-1025-by-64",
    ),
    pytest.param(
        MODEL + """
N_SAMPLES = 1000
BATCH = 37
dataset = TensorDataset(torch.randn(N_SAMPLES, 16), torch.randn(N_SAMPLES, 1))
loader = DataLoader(dataset, batch_size=BATCH, drop_last=False)  # expect: BN202
for epoch in range(3):
    train(loader)
""",
        id="module-constants-drop-last-false",
    ),
    pytest.param(
        MODEL + """
full = TensorDataset(torch.randn(1200, 16), torch.randn(1200, 1))
train_set, val_set = random_split(full, [1000, 200])
train(DataLoader(train_set, batch_size=111, shuffle=True))  # expect: BN202
""",
        id="random-split-part",
    ),
    pytest.param(
        MODEL + """
full = TensorDataset(torch.randn(5000, 16), torch.randn(5000, 1))
subset = Subset(full, range(4097))
loader = DataLoader(subset, batch_size=32, shuffle=True)  # expect: BN202
train(loader)
""",
        id="subset-of-a-range",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torch.utils.data import DataLoader, TensorDataset


        class Trainer:
            def __init__(self, images, labels):
                self.model = torchvision.models.resnet50(num_classes=10)
                self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
                self.loader = DataLoader(TensorDataset(images, labels), batch_size=10, shuffle=True)  # expect: BN202

            def run(self, epochs):
                for _ in range(epochs):
                    self.model.train()
                    for x, y in self.loader:
                        self.optimizer.zero_grad()
                        torch.nn.functional.cross_entropy(self.model(x), y).backward()
                        self.optimizer.step()


        Trainer(torch.randn(501, 3, 32, 32), torch.randint(0, 10, (501,))).run(5)
        """,
        id="trainer-class-torchvision",
    ),
    pytest.param(
        MODEL + """
loader = DataLoader(  # expect: BN202
    TensorDataset(torch.randn(65, 16), torch.randn(65, 1)),
    batch_size=8,
    num_workers=2,
)
train(loader)
""",
        id="multiline-call",
    ),
]

NEGATIVE = [
    pytest.param(
        MODEL + """
dataset = TensorDataset(torch.randn(1025, 16), torch.randn(1025, 1))
train(DataLoader(dataset, batch_size=64, shuffle=True, drop_last=True))
""",
        id="drop-last",
    ),
    pytest.param(
        MODEL + """
dataset = TensorDataset(torch.randn(1024, 16), torch.randn(1024, 1))
train(DataLoader(dataset, batch_size=64, shuffle=True))
""",
        id="length-divides-evenly",
    ),
    pytest.param(
        MODEL + """
dataset = TensorDataset(torch.randn(1026, 16), torch.randn(1026, 1))
train(DataLoader(dataset, batch_size=64, shuffle=True))
""",
        id="last-batch-of-two",
    ),
    pytest.param(
        MODEL + """
dataset = TensorDataset(torch.randn(1025, 16), torch.randn(1025, 1))
train(DataLoader(dataset, batch_size=128, shuffle=True, drop_last=True))
model.eval()
with torch.no_grad():
    for x, y in DataLoader(dataset, batch_size=64):
        model(x)
""",
        id="evaluation-loader",
    ),
    pytest.param(
        MODEL + """
train(DataLoader(dataset, batch_size=64, shuffle=True))
train(DataLoader(ImageFolder("data/train"), batch_size=64, shuffle=True))
""",
        id="length-unknown",
    ),
    pytest.param(
        """
        import torch
        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset

        model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
        optimizer = torch.optim.Adam(model.parameters())
        for x, y in DataLoader(TensorDataset(torch.randn(1025, 16), torch.randn(1025, 1)), batch_size=64):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        """,
        id="model-without-batch-norm",
    ),
    pytest.param(
        MODEL + """
def make_loader(dataset, **kwargs):
    return DataLoader(dataset, batch_size=64, **kwargs)


train(make_loader(TensorDataset(torch.randn(1025, 16), torch.randn(1025, 1)), drop_last=True))
""",
        id="drop-last-through-kwargs",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_flags(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_flag(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)


FIXES = [
    pytest.param(
        "train(DataLoader(dataset, batch_size=64, shuffle=True))\n",
        "train(DataLoader(dataset, batch_size=64, shuffle=True, drop_last=True))\n",
        id="appended",
    ),
    pytest.param(
        "train(DataLoader(dataset, batch_size=64, drop_last=False, num_workers=2))\n",
        "train(DataLoader(dataset, batch_size=64, drop_last=True, num_workers=2))\n",
        id="false-replaced",
    ),
    pytest.param(
        "loader = DataLoader(\n    dataset,\n    batch_size=64,\n    shuffle=True,\n)\ntrain(loader)\n",
        "loader = DataLoader(\n    dataset,\n    batch_size=64,\n    shuffle=True,\n    drop_last=True,\n)\n"
        "train(loader)\n",
        id="one-argument-per-line",
    ),
]


@pytest.mark.parametrize(("before", "after"), FIXES)
def test_fix(before: str, after: str) -> None:
    prefix = dedent(MODEL) + "dataset = TensorDataset(torch.randn(1025, 16), torch.randn(1025, 1))\n"
    assert [d.code for d in lint_source(prefix + before)] == [CODE]
    fixed = fix_source(prefix + before)
    assert fixed == prefix + after
    assert not lint_source(fixed)
    assert fix_source(fixed) == fixed, "not idempotent"


def test_no_fix_when_drop_last_is_positional() -> None:
    source = dedent(MODEL) + dedent("""
        dataset = TensorDataset(torch.randn(1025, 16), torch.randn(1025, 1))
        train(DataLoader(dataset, 64, True, None, None, 0, None, False, False))
        """)
    (finding,) = lint_source(source)
    assert finding.code == CODE and finding.fix is None
