"""BN401 weight-decay-on-bn: an optimizer with weight decay over all parameters of a
batch-norm model, reported at the optimizer constructor."""

from __future__ import annotations

import pytest

from .conftest import assert_matches_markers

CODE = "BN401"

POSITIVE = [
    pytest.param(
        """
        import torch
        import torchvision

        model = torchvision.models.resnet50()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)  # expect: BN401
        """,
        id="torchvision-resnet-sgd",
    ),
    pytest.param(
        """
        import torch.nn as nn
        from torch.optim import SGD as Opt


        class Net(nn.Module):
            def __init__(self, classes=10):
                super().__init__()
                self.conv = nn.Conv2d(3, 64, 3, padding=1, bias=False)
                self.bn = nn.BatchNorm2d(64)
                self.fc = nn.Linear(64, classes)

            def forward(self, x):
                return self.fc(self.bn(self.conv(x)).relu().mean((2, 3)))


        net = Net().cuda()
        opt = Opt(net.parameters(), 0.05, momentum=0.9, weight_decay=5e-4)  # expect: BN401
        """,
        id="aliased-optimizer-project-class",
    ),
    pytest.param(
        """
        from torch import nn, optim

        model = nn.Sequential(nn.Linear(784, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, 10))
        optimizer = optim.AdamW(model.parameters(), lr=3e-4)  # expect: BN401
        """,
        id="adamw-default-decay",
    ),
    pytest.param(
        """
        import torch
        import torchvision


        def build_optimizer(model, lr, weight_decay=5e-4):
            return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)  # expect: BN401


        def main():
            model = torchvision.models.resnet18(num_classes=100)
            optimizer = build_optimizer(model, lr=0.1)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=200)
            return model, optimizer, scheduler


        main()
        """,
        id="helper-builds-the-optimizer",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Conv1d(40, 128, 5, bias=False), nn.BatchNorm1d(128), nn.ReLU())

            def forward(self, x):
                return self.net(x)


        class Trainer:
            def __init__(self, lr=1e-3):
                self.model = Encoder()
                self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, weight_decay=1e-5)  # expect: BN401

            def step(self, batch, target):
                self.model.train()
                loss = nn.functional.mse_loss(self.model(batch), target)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
        """,
        id="trainer-class",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torch.nn.parallel import DistributedDataParallel as DDP


        def setup(rank):
            model = torchvision.models.resnet50().cuda(rank)
            model = DDP(torch.nn.SyncBatchNorm.convert_sync_batchnorm(model), device_ids=[rank])
            optimizer = torch.optim.SGD(params=model.parameters(), lr=0.1, weight_decay=1e-4)  # expect: BN401
            return model, optimizer
        """,
        id="parameters-of-the-ddp-wrapper-keyword",
    ),
    pytest.param(
        """
        import pytorch_lightning as pl
        import torch
        import torch.nn as nn


        class LitNet(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Conv2d(3, 32, 3, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.Flatten())

            def training_step(self, batch, batch_idx):
                x, y = batch
                return nn.functional.cross_entropy(self.net(x), y)

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)  # expect: BN401
        """,
        id="lightning-configure-optimizers",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        import torch
        import torchvision

        model = torchvision.models.resnet50()
        decay, no_decay = [], []
        for name, parameter in model.named_parameters():
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
        optimizer = torch.optim.SGD(
            [{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}],
            lr=0.1,
            momentum=0.9,
        )
        """,
        id="param-groups-separate-norm-and-bias",
    ),
    pytest.param(
        """
        import torch
        import torchvision

        model = torchvision.models.resnet50()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0)
        adamw = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
        """,
        id="weight-decay-zero",
    ),
    pytest.param(
        """
        import torch
        import torchvision

        model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        model.requires_grad_(False)
        model.fc = torch.nn.Linear(2048, 10)
        optimizer = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.01, weight_decay=1e-4)
        head_optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.01, weight_decay=1e-4)
        model.eval()
        """,
        id="filtered-parameters-and-head-only",
    ),
    pytest.param(
        """
        import torch
        from torch import nn

        encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(512, 8), num_layers=6)
        optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-4, weight_decay=0.05)
        """,
        id="model-without-bn",
    ),
    pytest.param(
        """
        import torch
        import torchvision

        model = torchvision.models.resnet50()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        """,
        id="adam-default-no-decay",
    ),
    pytest.param(
        """
        import torch
        import torchvision


        def build(model, args):
            parameters = [p for n, p in model.named_parameters() if "bn" not in n and not n.endswith(".bias")]
            return torch.optim.SGD(parameters, lr=args.lr, weight_decay=args.weight_decay)


        optimizer = build(torchvision.models.resnet50(), args)
        """,
        id="comprehension-excludes-bn",
    ),
    pytest.param(
        """
        import torch
        import torchvision

        model = torchvision.models.resnet50()
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        """,
        id="decay-not-a-literal",
    ),
    pytest.param(
        """
        import keras

        model = keras.applications.ResNet50(weights=None, classes=10)
        model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-4), loss="mse")
        """,
        id="keras-optimizer-is-not-torch",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torchvision.ops import FrozenBatchNorm2d

        backbone = torchvision.models.resnet50(weights="IMAGENET1K_V2", norm_layer=FrozenBatchNorm2d)
        optimizer = torch.optim.SGD(backbone.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
        """,
        id="frozen-batch-norm-has-no-affine-parameters",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_flagged(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_not_flagged(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)
