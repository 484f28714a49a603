"""BN106 frozen-bn-still-updating: the parameters of (a part of) a batch-norm model are
frozen while the module still runs in train mode, reported at the freezing statement."""

from __future__ import annotations

import pytest

from .conftest import assert_matches_markers

CODE = "BN106"

POSITIVE = [
    pytest.param(
        """
        import torch
        import torch.nn as nn
        import torchvision

        model = torchvision.models.resnet18(weights="IMAGENET1K_V1")
        for param in model.parameters():
            param.requires_grad = False  # expect: BN106
        model.fc = nn.Linear(512, 2)
        optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.001, momentum=0.9)


        def train_model(model, optimizer, loaders, epochs):
            for epoch in range(epochs):
                for phase in ["train", "val"]:
                    if phase == "train":
                        model.train()
                    else:
                        model.eval()
                    for inputs, labels in loaders[phase]:
                        with torch.set_grad_enabled(phase == "train"):
                            loss = nn.functional.cross_entropy(model(inputs), labels)
                            if phase == "train":
                                optimizer.zero_grad()
                                loss.backward()
                                optimizer.step()


        train_model(model, optimizer, loaders, epochs=25)
        """,
        id="transfer-learning-tutorial-fixed-feature-extractor",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone = nn.Sequential(nn.Conv2d(3, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU())
                self.head = nn.Linear(64, 10)

            def forward(self, x):
                return self.head(self.backbone(x).mean((2, 3)))


        def evaluate(model, loader):
            model.eval()
            with torch.no_grad():
                return sum((model(x).argmax(1) == y).sum() for x, y in loader)


        model = Net()
        for p in model.backbone.parameters():
            p.requires_grad = False  # expect: BN106
        optimizer = torch.optim.Adam(model.head.parameters(), lr=1e-3)
        for epoch in range(10):
            model.train()
            for x, y in train_loader:
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            evaluate(model, val_loader)
        """,
        id="backbone-frozen-epoch-loop-with-validation",
    ),
    pytest.param(
        """
        import torch.nn as nn
        import torchvision


        class Classifier(nn.Module):
            def __init__(self, classes):
                super().__init__()
                self.backbone = torchvision.models.resnet50(weights="IMAGENET1K_V2")
                self.backbone.fc = nn.Identity()
                for p in self.backbone.parameters():
                    p.requires_grad = False  # expect: BN106
                self.head = nn.Linear(2048, classes)

            def forward(self, x):
                return self.head(self.backbone(x))
        """,
        id="module-freezes-its-backbone-in-init",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(nn.Conv1d(40, 128, 5, bias=False), nn.BatchNorm1d(128), nn.ReLU())
                self.proj = nn.Linear(128, 32)

            def forward(self, x):
                return self.proj(self.features(x).mean(2))


        encoder = Encoder()
        encoder.features.requires_grad_(False)  # expect: BN106
        optimizer = torch.optim.Adam(encoder.proj.parameters(), lr=1e-3)
        for batch, target in loader:
            loss = nn.functional.mse_loss(encoder(batch), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        """,
        id="fresh-model-trained-without-eval",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        import torchvision


        class FineTuner:
            def __init__(self, lr=1e-3):
                self.model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
                self.model.layer1.requires_grad_(False)  # expect: BN106
                self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)

            def train_epoch(self, loader):
                self.model.train()
                for x, y in loader:
                    loss = nn.functional.cross_entropy(self.model(x), y)
                    self.optimizer.zero_grad()
                    loss.backward()
                    self.optimizer.step()
        """,
        id="trainer-class-freezes-a-stage",
    ),
    pytest.param(
        """
        import torch
        import torch.nn.functional as F
        import torchvision

        teacher = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        teacher.requires_grad_(False)  # expect: BN106
        student = torchvision.models.resnet18(num_classes=1000)
        optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
        student.train()
        for images, labels in loader:
            soft = F.softmax(teacher(images), dim=1)
            loss = F.kl_div(F.log_softmax(student(images), dim=1), soft, reduction="batchmean")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        """,
        id="frozen-teacher-called-in-train-mode",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        import torchvision


        def freeze(module):
            for parameter in module.parameters():
                parameter.requires_grad = False  # expect: BN106


        model = torchvision.models.resnet34(weights="IMAGENET1K_V1")
        freeze(model.layer1)
        freeze(model.layer2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        model.train()
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        """,
        id="freezing-helper",
    ),
    pytest.param(
        """
        import pytorch_lightning as pl
        import torch
        import torch.nn as nn
        import torchvision


        class LitClassifier(pl.LightningModule):
            def __init__(self, classes=10, lr=1e-3):
                super().__init__()
                self.backbone = torchvision.models.efficientnet_b0(weights="IMAGENET1K_V1")
                self.backbone.requires_grad_(False)  # expect: BN106
                self.head = nn.Linear(1000, classes)
                self.lr = lr

            def training_step(self, batch, batch_idx):
                images, labels = batch
                return nn.functional.cross_entropy(self.head(self.backbone(images)), labels)

            def configure_optimizers(self):
                return torch.optim.Adam(self.head.parameters(), lr=self.lr)
        """,
        id="lightning-module-freezes-its-backbone",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        import torch
        import torch.nn as nn
        import torchvision

        model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        for p in model.layer1.parameters():
            p.requires_grad = False
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for epoch in range(10):
            model.train()
            model.layer1.eval()
            for x, y in loader:
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        """,
        id="frozen-part-put-back-in-eval",
    ),
    pytest.param(
        """
        import torch.nn as nn
        import torchvision


        class Classifier(nn.Module):
            def __init__(self, classes):
                super().__init__()
                self.backbone = torchvision.models.resnet50(weights="IMAGENET1K_V2")
                self.backbone.fc = nn.Identity()
                self.backbone.requires_grad_(False)
                self.head = nn.Linear(2048, classes)

            def train(self, mode=True):
                super().train(mode)
                self.backbone.eval()
                return self

            def forward(self, x):
                return self.head(self.backbone(x))


        model = Classifier(10)
        model.train()
        """,
        id="train-overridden-to-refreeze",
    ),
    pytest.param(
        """
        import torch
        import torch.nn.functional as F
        import torchvision

        teacher = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        teacher.requires_grad_(False)
        teacher.eval()
        student = torchvision.models.resnet18(num_classes=1000)
        optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
        student.train()
        for images, labels in loader:
            with torch.no_grad():
                soft = F.softmax(teacher(images), dim=1)
            loss = F.kl_div(F.log_softmax(student(images), dim=1), soft, reduction="batchmean")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        """,
        id="frozen-teacher-in-eval-under-no-grad",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        import torchvision

        model = torchvision.models.vit_b_16(weights="IMAGENET1K_V1")
        for p in model.parameters():
            p.requires_grad = False
        model.heads = nn.Linear(768, 10)
        optimizer = torch.optim.SGD(model.heads.parameters(), lr=0.01)
        model.train()
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        """,
        id="model-without-bn",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Probe(nn.Module):
            def __init__(self, encoder_dim=512):
                super().__init__()
                self.encoder = nn.Sequential(nn.Conv2d(3, encoder_dim, 3, bias=False), nn.BatchNorm2d(encoder_dim))
                self.head = nn.Linear(encoder_dim, 10)
                for p in self.head.parameters():
                    p.requires_grad = False

            def forward(self, x):
                return self.head(self.encoder(x).mean((2, 3)))
        """,
        id="only-a-linear-head-frozen",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class PerceptualLoss(nn.Module):
            def __init__(self, backbone):
                super().__init__()
                self.backbone = backbone
                self.requires_grad_(False)

            def forward(self, x, y):
                return nn.functional.l1_loss(self.backbone(x), self.backbone(y))


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Conv2d(3, 16, 3, bias=False), nn.BatchNorm2d(16))

            def forward(self, x):
                return self.body(x)


        extractor = Net()
        extractor.requires_grad_(False)
        extractor.eval()
        with torch.no_grad():
            features = [extractor(x) for x, _ in loader]
        """,
        id="whole-model-frozen-for-inference",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Discriminator(nn.Module):
            def __init__(self):
                super().__init__()
                self.main = nn.Sequential(nn.Conv2d(3, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.LeakyReLU(0.2))

            def forward(self, x):
                return self.main(x).mean((1, 2, 3))


        netD = Discriminator()
        optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4)
        for real, noise in loader:
            for p in netD.parameters():
                p.requires_grad = True
            lossD = netD(real).mean() - netD(generator(noise).detach()).mean()
            optimizerD.zero_grad()
            lossD.backward()
            optimizerD.step()
            for p in netD.parameters():
                p.requires_grad = False
            lossG = -netD(generator(noise)).mean()
            lossG.backward()
        """,
        id="gan-discriminator-toggled",
    ),
    pytest.param(
        """
        import keras

        base = keras.applications.ResNet50(weights="imagenet", include_top=False, pooling="avg")
        base.trainable = False
        inputs = keras.Input(shape=(224, 224, 3))
        outputs = keras.layers.Dense(10)(base(inputs, training=False))
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(dataset, epochs=5)
        """,
        id="keras-trainable-false-is-bn105s-domain",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Conv(nn.Module):
            def __init__(self, c1, c2, k=1):
                super().__init__()
                self.conv = nn.Conv2d(c1, c2, k, padding=k // 2, bias=False)
                self.bn = nn.BatchNorm2d(c2)

            def forward(self, x):
                return self.bn(self.conv(x)).relu()


        def fuse_conv_and_bn(conv, bn):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            return conv.requires_grad_(False)


        class RepBlock(nn.Module):
            def __init__(self, channels):
                super().__init__()
                self.conv = Conv(channels, channels, 3)

            def forward(self, x):
                return self.conv(x)

            @torch.no_grad()
            def fuse(self):
                self.fused = fuse_conv_and_bn(self.conv.conv, self.conv.bn)
        """,
        id="conv-bn-fusion-under-no-grad-regression-ultralytics",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        import torchvision

        model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        model.requires_grad_(False)
        model.fc = nn.Linear(2048, 10)
        optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.01)
        model.eval()
        model.fc.train()
        for epoch in range(10):
            for x, y in loader:
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        """,
        id="whole-body-in-eval-only-the-new-head-trains",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        import torchvision
        from torchvision.ops import misc

        model = torchvision.models.resnet50(weights="IMAGENET1K_V2", norm_layer=misc.FrozenBatchNorm2d)
        model.layer1.requires_grad_(False)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
        model.train()
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        """,
        id="built-with-frozen-batch-norm",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Detector(nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone = nn.Sequential(nn.Conv2d(3, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU())
                self.head = nn.Conv2d(64, 5, 1)

            def forward(self, x):
                return self.head(self.backbone(x))

            def freeze_bn(self):
                for module in self.modules():
                    if isinstance(module, nn.BatchNorm2d):
                        module.eval()


        model = Detector()
        model.backbone.requires_grad_(False)
        optimizer = torch.optim.SGD(model.head.parameters(), lr=0.01)
        for epoch in range(12):
            model.train()
            model.freeze_bn()
            for images, targets in loader:
                loss = nn.functional.mse_loss(model(images), targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        """,
        id="freeze-bn-method-called-after-train",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        import torchvision

        FROZEN = ("layer1.", "layer2.")


        def set_train_mode(model):
            model.train()
            for name, module in model.named_modules():
                if name.startswith(FROZEN) and isinstance(module, nn.BatchNorm2d):
                    module.eval()


        model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        for p in model.layer1.parameters():
            p.requires_grad = False
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for epoch in range(10):
            set_train_mode(model)
            for x, y in loader:
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        """,
        id="batch-norms-of-frozen-stages-put-in-eval-regression-ultralytics",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_flagged(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_not_flagged(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)
