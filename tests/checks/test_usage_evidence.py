"""The usage rules decide what code does from what it does, and follow models through
factories, containers, conditional wraps and loops (issue 11, from public code):

- a function named `test` / `evaluate` is inference only when it does inference's work
  (iterates data, loads weights, computes a metric, collects or returns outputs);
- a forward pass trains only where a training step is taken with it;
- a model keeps its mode through a loop that ends in that mode, its identity through
  `if cuda: net = nn.DataParallel(net)`, and its batch norm through `get_network(args)`,
  `nn.Sequential(backbone, head)` and `Detector(backbone)`;
- a frozen model evaluated during training (linear evaluation) is deliberate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bnlint.engine import lint_source

from .conftest import assert_matches_markers, dedent, expected_at, lint_package, package_markers

NET = """
import torch
import torch.nn as nn
import torchvision


class SmallNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))
"""

FLAGGED = [
    pytest.param(NET + """

def test(loader, weights):
    net = SmallNet()
    net.load_state_dict(torch.load(weights))
    correct = 0
    for images, labels in loader:
        correct += (net(images).argmax(1) == labels).sum().item()  # expect: BN101
    return correct
""", id="test-function-that-evaluates"),
    pytest.param(NET + """

def predict(images):
    model = SmallNet()
    return model(images).softmax(1)  # expect: BN101
""", id="predict-returns-outputs"),
    pytest.param(NET + """

model = SmallNet()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(5):
    model.train()
    for images, labels in train_loader:
        nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for images, labels in val_loader:
            model(images)
    model.train()

with torch.no_grad():
    predictions = model(test_images)  # expect: BN101
""", id="loop-leaves-train-mode"),
    pytest.param(NET + """

def build(name):
    if name == "small":
        return SmallNet(10)
    elif name == "wide":
        return SmallNet(100)
    raise ValueError(name)


net = build("small")
with torch.no_grad():
    logits = net(images)  # expect: BN101
""", id="factory-whose-branches-return-bn-models"),
    pytest.param("""
import torch
import torch.nn as nn
import torchvision


class Detector(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(1000, 4)

    def forward(self, x):
        return self.head(self.backbone(x))


detector = Detector(torchvision.models.resnet18())
with torch.no_grad():
    boxes = detector(images)  # expect: BN101
""", id="model-composed-into-another"),
    pytest.param("""
import torch
import torch.nn as nn
import torchvision

device = "cuda" if torch.cuda.is_available() else "cpu"
net = torchvision.models.resnet18().to(device)
if device == "cuda":
    net = nn.DataParallel(net)  # expect: BN204
optimizer = torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=5e-4)  # expect: BN401
for epoch in range(3):
    net.train()
    for images, labels in loader:
        nn.functional.cross_entropy(net(images), labels).backward()
        optimizer.step()
""", id="conditional-wrap-keeps-the-model"),
    pytest.param("""
import torch
import torch.nn as nn
import torchvision

encoder = torchvision.models.resnet50(weights="DEFAULT")
encoder.requires_grad_(False)  # expect: BN106
model = nn.Sequential(encoder, nn.Linear(1000, 10))
optimizer = torch.optim.Adam(model[1].parameters())
model.train()
for images, labels in loader:
    nn.functional.cross_entropy(model(images), labels).backward()
    optimizer.step()
""", id="frozen-backbone-inside-a-sequential-in-train-mode"),
    pytest.param("""
import torch
import torch.nn as nn
import torchvision

model = torchvision.models.resnet50(weights="DEFAULT")
for name, param in model.named_parameters():
    if not name.startswith("fc."):
        param.requires_grad = False  # expect: BN106
optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.1)
model.train()
for images, labels in loader:
    nn.functional.cross_entropy(model(images), labels).backward()
    optimizer.step()
""", id="named-parameters-freeze-all-but-the-head"),
    pytest.param(NET + """

def smoke_test():
    net = SmallNet()
    features = nn.Sequential(nn.Linear(8, 8, bias=False), nn.BatchNorm1d(8))
    print(features(torch.randn(1, 8)).shape)  # expect: BN201
""", id="one-value-per-channel-raises-even-in-a-shape-check"),
]

SILENT = [
    pytest.param(NET + """

def test():
    net = SmallNet()
    y = net(torch.randn(2, 3, 32, 32))
    print(y.size())


def test_resnet():
    net = torchvision.models.resnet18()
    x = torch.randn(1, 3, 32, 32)
    print(net(x).shape)
""", id="shape-smoke-tests"),
    pytest.param(NET + """

def evaluate():
    model = SmallNet()
    out = model(torch.randn(4, 3, 32, 32))
    print(out.shape, out.dtype)
""", id="evaluate-named-shape-check"),
    pytest.param(NET + """

model = SmallNet()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(5):
    model.train()
    for images, labels in train_loader:
        nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for images, labels in val_loader:
            model(images)

with torch.no_grad():
    predictions = model(test_images)
""", id="loop-leaves-eval-mode"),
    pytest.param("""
import torch
import torch.nn as nn
import torchvision

backbone = torchvision.models.resnet50(weights="DEFAULT")
for p in backbone.parameters():
    p.requires_grad = False
images = torch.randn(64, 3, 224, 224)
outputs = backbone(images)
print(outputs.size())
""", id="frozen-model-run-once-trains-nothing"),
    pytest.param("""
import torch
import torch.nn as nn
import torchvision

encoder = torchvision.models.resnet50(weights="DEFAULT")
encoder.requires_grad_(False)
model = nn.Sequential(encoder, nn.Linear(1000, 10))
optimizer = torch.optim.Adam(model[1].parameters())
model.train()
encoder.eval()
for images, labels in loader:
    nn.functional.cross_entropy(model(images), labels).backward()
    optimizer.step()
""", id="frozen-backbone-put-back-in-eval"),
    pytest.param("""
import torch
import torch.nn as nn
import torchvision


def train(loader, model, optimizer):
    model.eval()  # linear evaluation: the frozen backbone keeps its statistics
    for images, labels in loader:
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def validate(loader, model):
    model.eval()
    with torch.no_grad():
        for images, labels in loader:
            model(images)


model = torchvision.models.resnet50()
for name, param in model.named_parameters():
    if name not in ["fc.weight", "fc.bias"]:
        param.requires_grad = False
optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
for epoch in range(90):
    train(train_loader, model, optimizer)
    validate(val_loader, model)
""", id="linear-evaluation"),
    pytest.param("""
import torch
import torch.nn as nn
import torchvision

device = "cuda" if torch.cuda.is_available() else "cpu"
net = torchvision.models.resnet18().to(device)
if device == "cuda":
    net = nn.DataParallel(net)
net.eval()
with torch.no_grad():
    net(images)
""", id="conditional-wrap-evaluated"),
]


@pytest.mark.parametrize("source", FLAGGED)
def test_reports(source: str) -> None:
    assert_matches_markers(source, expected_at(source)[0][0], flagged=True)


@pytest.mark.parametrize("source", SILENT)
def test_stays_silent(source: str) -> None:
    assert [d.code for d in lint_source(dedent(source)) if d.code < "BN300" or d.code == "BN401"] == []


def test_frozen_model_message_names_the_variable() -> None:
    source = """
import torch
import torch.nn as nn
import torchvision

resnet = torchvision.models.resnet18(weights="DEFAULT")
for param in resnet.parameters():
    param.requires_grad = False
resnet.train()
for images, labels in loader:
    nn.functional.cross_entropy(resnet(images), labels).backward()
    optimizer.step()
"""
    (finding,) = [d for d in lint_source(dedent(source)) if d.code == "BN106"]
    assert finding.message.startswith("`resnet` (`torchvision.models.resnet18`) is frozen")


def test_linear_evaluation_without_the_freeze_is_reported() -> None:
    source = dedent(SILENT[5].values[0]).replace(
        """for name, param in model.named_parameters():
    if name not in ["fc.weight", "fc.bias"]:
        param.requires_grad = False
""", "")
    assert "BN103" in {d.code for d in lint_source(source)}


FACTORY_MODULES = {
    "nets": """
        import torch.nn as nn


        class ResNet(nn.Module):
            def __init__(self, blocks):
                super().__init__()
                self.conv = nn.Conv2d(3, 16, 3, bias=False)
                self.bn = nn.BatchNorm2d(16)

            def forward(self, x):
                return self.bn(self.conv(x))


        def resnet20():
            return ResNet(3)


        def resnet56():
            return ResNet(9)


        def get_network(name):
            if name == "resnet20":
                return resnet20()
            return resnet56()
        """,
    "infer": """
        import torch

        from .nets import get_network, resnet20


        net = resnet20()
        with torch.no_grad():
            net(torch.randn(8, 3, 32, 32))  # expect: BN101

        other = get_network("resnet56")
        other.eval()
        with torch.no_grad():
            other(torch.randn(8, 3, 32, 32))
        """,
}


def test_factories_in_another_module(tmp_path: Path) -> None:
    assert lint_package(tmp_path, FACTORY_MODULES, {"BN101"}) == package_markers(FACTORY_MODULES)



KERAS_MODEL = """
import keras
import tensorflow as tf
from keras import layers


def build_model():
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(32, 3, use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    outputs = layers.Dense(10)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)
"""


@pytest.mark.parametrize("source", [
    pytest.param(KERAS_MODEL + """

class Exporter(tf.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
    def serve(self, images):
        return self.model(images, training=True)  # expect: BN107


exporter = Exporter(build_model())
tf.saved_model.save(exporter, "exported", signatures={"serving_default": exporter.serve})
""", id="serving-signature-of-a-tf-module"),
    pytest.param(KERAS_MODEL + """

class Trainer:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer

    def train_step(self, images, labels):
        with tf.GradientTape() as tape:
            logits = self.model(images)  # expect: BN104
            loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))


trainer = Trainer(build_model(), keras.optimizers.Adam())
""", id="trainer-holding-the-model-it-was-given"),
])
def test_keras_models_reached_through_attributes(source: str) -> None:
    assert_matches_markers(source, expected_at(source)[0][0], flagged=True)


def test_keras_near_misses_stay_silent() -> None:
    source = KERAS_MODEL + """

class Exporter(tf.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
    def serve(self, images):
        return self.model(images, training=False)

    @tf.function
    def adapt(self, images):
        return self.model(images, training=True)


class Trainer:
    def __init__(self, model):
        self.model = model

    def train_step(self, images, labels, optimizer):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(self.model(images, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, self.model.trainable_variables),
                                      self.model.trainable_variables))


exporter = Exporter(build_model())
trainer = Trainer(build_model())
"""
    assert [d.code for d in lint_source(dedent(source))] == []
