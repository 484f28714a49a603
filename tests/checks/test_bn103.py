"""BN103 train-mode-not-restored: a loop that trains a model and switches it to eval mode
without any `.train()`, reported at the `.eval()` that leaves it in eval mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnlint.engine import fix_source

from .conftest import assert_matches_markers, dedent, lint_package, package_markers

CODE = "BN103"

NET = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(20, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, x):
        return self.body(x)
"""

TRAIN_STEP = """
def train_one_epoch(model, loader, optimizer):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
"""

POSITIVE = [
    pytest.param(
        NET + TRAIN_STEP + """

def validate(model, loader):
    model.eval()  # expect: BN103
    with torch.no_grad():
        return sum(F.cross_entropy(model(x), y).item() for x, y in loader)


def main(train_loader, val_loader):
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(100):
        train_one_epoch(model, train_loader, optimizer)
        validate(model, val_loader)
""",
        id="validate-helper-in-epoch-loop",
    ),
    pytest.param(
        NET + """

def main(train_loader, val_loader, epochs=10):
    model = Net().cuda()
    optimizer = torch.optim.Adam(model.parameters())
    for epoch in range(epochs):
        for x, y in train_loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        model.eval()  # expect: BN103
        with torch.no_grad():
            accuracy = sum((model(x).argmax(1) == y).float().mean() for x, y in val_loader)
""",
        id="inline-validation",
    ),
    pytest.param(
        NET + TRAIN_STEP + """

class Trainer:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer

    def evaluate(self, loader):
        self.model.eval()  # expect: BN103
        with torch.no_grad():
            return [self.model(x) for x, _ in loader]

    def fit(self, train_loader, val_loader, epochs):
        for epoch in range(epochs):
            train_one_epoch(self.model, train_loader, self.optimizer)
            if epoch % 5 == 0:
                self.evaluate(val_loader)
""",
        id="trainer-class-conditional-validation",
    ),
    pytest.param(
        NET + """

def main(loader):
    model = nn.DataParallel(Net())  # expect: BN204
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    step = 0
    while step < 1000:
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            step += 1
            if step % 100 == 0:
                model.module.eval()  # expect: BN103
                with torch.no_grad():
                    print(model(x).mean())
""",
        id="while-loop-wrapped-model",
    ),
    pytest.param(
        """
        import torch
        import torchvision


        def set_eval(module):
            module.eval()  # expect: BN103


        def finetune(loader, epochs):
            net = torchvision.models.resnet18(weights="DEFAULT")
            opt = torch.optim.SGD(net.parameters(), lr=1e-3)
            for epoch in range(epochs):
                for images, labels in loader:
                    torch.nn.functional.cross_entropy(net(images), labels).backward()
                    opt.step()
                set_eval(net)
        """,
        id="eval-through-a-helper-torchvision",
    ),
    pytest.param(
        NET + """

def main(loader, epochs, model=None):
    model = model or Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            F.mse_loss(model(x), y).backward()
            optimizer.step()
        model.train(False)  # expect: BN103
        print(model(x).sum())
""",
        id="train-false-is-eval",
    ),
]

NEGATIVE = [
    pytest.param(
        NET + TRAIN_STEP + """

def validate(model, loader):
    model.eval()
    with torch.no_grad():
        return [model(x) for x, _ in loader]


def main(train_loader, val_loader):
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(100):
        model.train()
        train_one_epoch(model, train_loader, optimizer)
        validate(model, val_loader)
""",
        id="mode-restored-at-the-top-of-each-epoch",
    ),
    pytest.param(
        NET + """

def train_one_epoch(model, loader, optimizer):
    model.train()
    for x, y in loader:
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def main(train_loader, val_loader):
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(100):
        train_one_epoch(model, train_loader, optimizer)
        model.eval()
        with torch.no_grad():
            print([model(x) for x, _ in val_loader])
""",
        id="train-inside-the-training-helper",
    ),
    pytest.param(
        NET + """

def main(train_loader, val_loader):
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(100):
        for x, y in train_loader:
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        print([model(x) for x, _ in val_loader])
""",
        id="eval-after-the-loop",
    ),
    pytest.param(
        NET + """

def main(loaders, models):
    for model, loader in zip(models, loaders):
        model.eval()
        with torch.no_grad():
            print([model(x) for x, _ in loader])
""",
        id="loop-that-only-evaluates",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        def main(loader, val_x):
            model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(10):
                for x, y in loader:
                    nn.functional.mse_loss(model(x), y).backward()
                    optimizer.step()
                model.eval()
                print(model(val_x))
        """,
        id="model-without-batch-norm-or-dropout",
    ),
    pytest.param(
        NET + """

def main(loader, teacher, epochs):
    student = Net()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    for epoch in range(epochs):
        teacher.eval()
        for x, y in loader:
            with torch.no_grad():
                target = teacher(x)
            F.mse_loss(student(x), target).backward()
            optimizer.step()
""",
        id="frozen-teacher-evaluated-student-trained",
    ),
    pytest.param(
        NET + """

def main(loader, epochs, restore):
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):
        for x, y in loader:
            F.mse_loss(model(x), y).backward()
            optimizer.step()
        model.eval()
        print(model(x))
        model.train(restore)
""",
        id="train-with-a-variable-mode",
    ),
    pytest.param(
        NET + """

def finetune(loader, epochs):
    model = Net()
    optimizer = torch.optim.SGD(model.body[3].parameters(), lr=0.1)
    for epoch in range(epochs):
        model.eval()
        model.body.train()
        for x, y in loader:
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
""",
        id="frozen-model-evaluated-its-part-trained",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_the_eval_call(source: str) -> None:
    assert_matches_markers(dedent(source), CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers(dedent(source), CODE, flagged=False)


def test_fix_restores_train_mode_at_the_top_of_the_loop() -> None:
    before = dedent(NET + """

def main(loader, epochs):
    net = Net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for epoch in range(epochs):
        # training phase
        for x, y in loader:
            F.mse_loss(net(x), y).backward()
            optimizer.step()
        net.eval()
        print(net(x))
""")
    after = fix_source(before, unsafe=True)
    assert after == before.replace("        # training phase\n", "        net.train()\n        # training phase\n")
    assert fix_source(after, unsafe=True) == after
    assert fix_source(before) == before


PACKAGE = {
    "models": NET,
    "loops": """
        import torch


        def evaluate(model, loader):
            model.eval()  # expect: BN103
            with torch.no_grad():
                return [model(x) for x, _ in loader]


        def train_epoch(model, loader, optimizer):
            for x, y in loader:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
        """,
    "main": """
        import torch

        from . import loops
        from .models import Net

        model = Net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(30):
            loops.train_epoch(model, [], optimizer)
            loops.evaluate(model, [])
        """,
}


def test_helpers_in_other_files_report_the_eval_in_the_helper(tmp_path: Path) -> None:
    modules = {name: dedent(source) for name, source in PACKAGE.items()}
    assert lint_package(tmp_path, modules, {CODE}) == package_markers(modules)
