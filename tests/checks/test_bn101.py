"""BN101 missing-eval: a batch-norm model run for inference (no_grad, inference_mode, an
evaluate/predict function) while provably in train mode, reported at the model call."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnlint.engine import fix_source

from .conftest import assert_matches_markers, dedent, lint_package, package_markers

CODE = "BN101"

NET = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))
"""

POSITIVE = [
    pytest.param(
        NET + """

def evaluate(loader):
    model = Net().to("cuda")
    correct = 0
    with torch.no_grad():
        for images, labels in loader:
            logits = model(images.cuda())  # expect: BN101
            correct += (logits.argmax(1) == labels).sum().item()
    return correct
""",
        id="fresh-project-model-under-no-grad",
    ),
    pytest.param(
        """
        import torch
        import torchvision.models as models


        @torch.inference_mode()
        def predict(batch):
            net = models.resnet50(weights="IMAGENET1K_V2")
            return net(batch).softmax(-1)  # expect: BN101
        """,
        id="torchvision-constructor-inference-mode-decorator",
    ),
    pytest.param(
        NET + """

def validate(model, loader):
    with torch.no_grad():
        return [model(x) for x, _ in loader]  # expect: BN101


def main(train_loader, val_loader, epochs):
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            model(x).sum().backward()
            optimizer.step()
        validate(model, val_loader)
""",
        id="helper-reached-from-epoch-loop-after-train",
    ),
    pytest.param(
        NET + """

class Trainer:
    def __init__(self, model, loader):
        self.model = model
        self.loader = loader

    def predict(self):
        outputs = []
        for batch in self.loader:
            outputs.append(self.model(batch))  # expect: BN101
        return outputs


trainer = Trainer(nn.DataParallel(Net()), loader=[])
trainer.predict()
""",
        id="trainer-attribute-wrapped-in-data-parallel",
    ),
    pytest.param(
        """
        import timm
        import torch


        def embed(images):
            backbone = timm.create_model("resnet50", pretrained=True, num_classes=0)
            with torch.no_grad():
                return backbone(images)  # expect: BN101
        """,
        id="model-zoo-unknown-content",
    ),
    pytest.param(
        """
        import torch
        from torch import nn

        encoder = nn.Sequential(nn.Linear(32, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU())
        encoder.load_state_dict(torch.load("encoder.pt"))
        with torch.no_grad():
            codes = encoder(torch.randn(4, 32))  # expect: BN101
        """,
        id="module-level-sequential",
    ),
    pytest.param(
        NET + """

def fit(train_loader, x_val, y_val, epochs):
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        with torch.no_grad():
            val_loss = torch.nn.functional.cross_entropy(model(x_val), y_val)  # expect: BN101
        print(epoch, val_loss.item())
""",
        id="train-switch-before-no-grad-call",
    ),
]

NEGATIVE = [
    pytest.param(
        NET + """

def evaluate(loader):
    model = Net().eval()
    with torch.no_grad():
        return [model(x) for x, _ in loader]
""",
        id="eval-chained-on-construction",
    ),
    pytest.param(
        NET + """

def set_eval(module):
    module.eval()


def evaluate(loader):
    model = Net()
    set_eval(model)
    with torch.no_grad():
        return [model(x) for x, _ in loader]
""",
        id="eval-in-a-helper-counts-at-call-site",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn

        mlp = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))
        with torch.no_grad():
            scores = mlp(torch.randn(8, 16))
        """,
        id="model-without-batch-norm",
    ),
    pytest.param(
        NET + """

@torch.no_grad()
def update_ema(ema, model, decay=0.999):
    for ema_p, p in zip(ema.parameters(), model.parameters()):
        ema_p.mul_(decay).add_(p, alpha=1 - decay)


def train(loader):
    model = Net()
    ema = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in loader:
        loss = model(x).sum()
        loss.backward()
        optimizer.step()
        update_ema(ema, model)
""",
        id="ema-update-under-no-grad-is-not-inference",
    ),
    pytest.param(
        NET + """

def test_time_adaptation(model, loader):
    model.train()  # adapt the batch-norm statistics to the test distribution on purpose
    with torch.no_grad():
        return [model(x) for x, _ in loader]


test_time_adaptation(Net(), [])
""",
        id="deliberate-train-mode-at-test-time",
    ),
    pytest.param(
        NET + """

def evaluate(model, loader, use_eval):
    if use_eval:
        model.eval()
    with torch.no_grad():
        return [model(x) for x, _ in loader]


evaluate(Net(), [], True)
""",
        id="mode-depends-on-a-condition",
    ),
    pytest.param(
        NET + """

def predict(model, x):
    with torch.no_grad():
        return model(x)
""",
        id="parameter-of-unknown-mode",
    ),
    pytest.param(
        NET + """

def test_forward_shape():
    model = Net()
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)
""",
        id="unit-test-function-is-not-inference",
    ),
    pytest.param(
        NET + """

class Tacotron(nn.Module):
    def __init__(self):
        super().__init__()
        self.postnet = Net()

    def infer(self, x):
        return self.postnet(x)
""",
        id="corpus-speechbrain-submodule-used-in-an-inference-method",
    ),
    pytest.param(
        """
        import torch
        import transformers


        class WordEmbeddings(torch.nn.Module):
            def __init__(self, source):
                super().__init__()
                self.model = transformers.AutoModel.from_pretrained(source)

            def forward(self, x):
                with torch.no_grad():
                    return self.model(x)
        """,
        id="corpus-speechbrain-pretrained-submodule-under-no-grad",
    ),
    pytest.param(
        NET + """

def evaluate(model, loader):
    model.train(False)
    with torch.no_grad():
        return [model(x) for x, _ in loader]


evaluate(Net(), [])
""",
        id="train-false",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_the_inference_call(source: str) -> None:
    assert_matches_markers("import torch\n" + dedent(source), CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers("import torch\n" + dedent(source), CODE, flagged=False)


def test_fix_inserts_eval_before_the_inference_block_once() -> None:
    before = dedent("""
        import torch
        import torchvision


        def evaluate(loader):
            model = torchvision.models.resnet18()
            with torch.no_grad():  # no gradients needed
                for x, _ in loader:
                    model(x)
        """)
    after = fix_source(before, unsafe=True)
    assert after == before.replace(
        "    with torch.no_grad():", "    model.eval()\n    with torch.no_grad():"
    )
    assert fix_source(after, unsafe=True) == after
    assert fix_source(before) == before  # unsafe: not applied by a plain --fix


MODELS = {
    "models": NET,
    "engine": """
        import torch


        def evaluate(model, loader):
            total = 0
            with torch.no_grad():
                for x, y in loader:
                    total += (model(x).argmax(1) == y).sum().item()  # expect: BN101
            return total
        """,
    "train": """
        import torch

        from proj.engine import evaluate
        from .models import Net


        def main(loader):
            net = Net().cuda()
            optimizer = torch.optim.AdamW(net.parameters())
            for x, y in loader:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(net(x), y).backward()
                optimizer.step()
            return evaluate(net, loader)
        """,
}


def test_a_helper_in_another_file_is_reported_where_the_call_is(tmp_path: Path) -> None:
    modules = {name: ("import torch\n" if name == "models" else "") + dedent(source)
               for name, source in MODELS.items()}
    assert lint_package(tmp_path, modules, {CODE}) == package_markers(modules)
