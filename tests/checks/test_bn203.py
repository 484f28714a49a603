"""BN203 small-batch: a batch-norm model trained with a literal batch size of 2 up to the
threshold (8 by default), reported at the batch-size argument."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnlint.config import load_config
from bnlint.engine import RunOptions, lint_paths

from .conftest import assert_matches_markers, dedent

CODE = "BN203"

POSITIVE = [
    pytest.param(
        """
        import torch
        import torchvision
        from torch.utils.data import DataLoader


        def train_one_epoch(model, loader, optimizer, scaler):
            model.train()
            for images, targets in loader:
                with torch.autocast("cuda"):
                    loss = torch.nn.functional.cross_entropy(model(images), targets)
                optimizer.zero_grad()
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()


        @torch.no_grad()
        def validate(model, loader):
            model.eval()
            return [model(images) for images, _ in loader]


        def main(train_set, val_set):
            model = torchvision.models.resnet50(num_classes=21).cuda()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
            scaler = torch.cuda.amp.GradScaler()
            train_loader = DataLoader(train_set, batch_size=4, shuffle=True, drop_last=True)  # expect: BN203
            val_loader = DataLoader(val_set, batch_size=2)
            for epoch in range(26):
                train_one_epoch(model, train_loader, optimizer, scaler)
                validate(model, val_loader)
        """,
        id="segmentation-helpers-validation-loader-not-flagged",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        from torch.utils.data import DataLoader

        IMS_PER_GPU = 2


        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv3d(1, 16, 3, bias=False)
                self.bn = nn.BatchNorm3d(16)

            def forward(self, x):
                return self.bn(self.conv(x))


        net = Head()
        opt = torch.optim.Adam(net.parameters())
        loader = DataLoader(volumes, IMS_PER_GPU, shuffle=True, drop_last=True)  # expect: BN203
        for epoch in range(100):
            for vol, seg in loader:
                opt.zero_grad()
                loss = nn.functional.mse_loss(net(vol), seg)
                loss.backward()
                opt.step()
        """,
        id="positional-module-constant-3d",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        from torch.utils.data import DataLoader


        class Detector(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Conv2d(3, 32, 3, bias=False), nn.BatchNorm2d(32), nn.ReLU())

            def forward(self, x):
                return self.body(x)


        def build_loader(dataset, batch_size=6):
            return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)  # expect: BN203


        class Runner:
            def __init__(self, dataset):
                self.model = Detector()
                self.loader = build_loader(dataset)
                self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01)

            def run(self):
                self.model.train()
                for batch in self.loader:
                    losses = self.model(batch).sum()
                    self.optimizer.zero_grad()
                    losses.backward()
                    self.optimizer.step()
        """,
        id="default-argument-of-a-loader-factory",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        model = keras.Sequential([
            keras.Input(shape=(256, 256, 3)),
            layers.Conv2D(64, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Conv2D(1, 1, activation="sigmoid"),
        ])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(train_images, train_masks, batch_size=2, validation_data=(val_images, val_masks))  # expect: BN203
        """,
        id="keras-fit",
    ),
    pytest.param(
        """
        import tensorflow as tf

        base = tf.keras.applications.ResNet50(weights=None, classes=3)
        base.compile(optimizer="adam", loss="categorical_crossentropy")
        train_ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(512).batch(4, drop_remainder=True)  # expect: BN203
        val_ds = tf.data.Dataset.from_tensor_slices((vx, vy)).batch(1)
        base.fit(train_ds, validation_data=val_ds, epochs=10)
        """,
        id="keras-tf-data-fit-validation-not-flagged",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        from torch.utils.data import DataLoader

        net = nn.Sequential(nn.Linear(10, 10, bias=False), nn.BatchNorm1d(10))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        loader_cfg = dict(batch_size=3, shuffle=True, drop_last=True)
        for x, y in DataLoader(ds, **loader_cfg):  # expect: BN203
            opt.zero_grad()
            nn.functional.mse_loss(net(x), y).backward()
            opt.step()
        """,
        id="batch-size-in-an-unpacked-dict",
    ),
    pytest.param(
        """
        import argparse

        import torch
        import torchvision
        from torch.utils.data import DataLoader


        def parse_args():
            parser = argparse.ArgumentParser()
            parser.add_argument("-b", "--batch-size", default=4, type=int, help="images per GPU")
            parser.add_argument("--epochs", default=26, type=int)
            return parser.parse_args()


        def main(args):
            model = torchvision.models.segmentation.fcn_resnet50(num_classes=21)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
            loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)  # expect: BN203
            for epoch in range(args.epochs):
                model.train()
                for image, target in loader:
                    loss = torch.nn.functional.cross_entropy(model(image)["out"], target)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()


        if __name__ == "__main__":
            main(parse_args())
        """,
        id="argparse-default-short-and-long-flag",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        import torch
        import torchvision
        from torch.utils.data import DataLoader

        model = torchvision.models.resnet50()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for images, labels in DataLoader(dataset, batch_size=8, shuffle=True):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
        """,
        id="batch-of-the-threshold",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        from torch.utils.data import DataLoader


        class UNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.GroupNorm(8, 32), nn.ReLU())

            def forward(self, x):
                return self.enc(x)


        model = UNet()
        optimizer = torch.optim.Adam(model.parameters())
        for x, y in DataLoader(dataset, batch_size=2, shuffle=True):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        """,
        id="group-norm-model",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torch.utils.data import DataLoader

        model = torchvision.models.resnet50()
        model.eval()
        with torch.no_grad():
            for images, _ in DataLoader(test_set, batch_size=4):
                model(images)
        """,
        id="inference-loader",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torch.utils.data import DataLoader


        def predict(model, dataset):
            model.eval()
            loader = DataLoader(dataset, batch_size=2)
            return torch.cat([model(images) for images, _ in loader])


        predictions = predict(torchvision.models.resnet50(), test_set)
        """,
        id="function-named-for-inference",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torch.utils.data import DataLoader

        model = torchvision.models.resnet50()
        loader = DataLoader(dataset, batch_size=cfg.TRAIN.IMS_PER_BATCH, shuffle=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for images, labels in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
        """,
        id="batch-size-from-a-config",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        model = keras.Sequential([
            keras.Input(shape=(32,)), layers.Dense(32, use_bias=False), layers.BatchNormalization(), layers.Dense(1)
        ])
        model.compile(optimizer="adam", loss="mse")
        model.fit(x_train, y_train, epochs=10)
        model.evaluate(x_test, y_test, batch_size=2)
        """,
        id="keras-default-batch-size-and-evaluate",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        from torch.utils.data import DataLoader

        net = nn.Sequential(nn.Linear(10, 10, bias=False), nn.BatchNorm1d(10))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        for x, y in DataLoader(ds, batch_size=4):
            net(x)
        """,
        id="no-training-step",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torchvision.ops import FrozenBatchNorm2d
        from torch.utils.data import DataLoader

        model = torchvision.models.resnet50(weights="IMAGENET1K_V2", norm_layer=FrozenBatchNorm2d)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
        model.train()
        for images, targets in DataLoader(train_set, batch_size=2, shuffle=True, drop_last=True):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), targets).backward()
            optimizer.step()
        """,
        id="frozen-batch-norm-layer",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        import torchvision
        from torch.utils.data import DataLoader


        def freeze_bn(model):
            for module in model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()


        model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
        for epoch in range(12):
            model.train()
            freeze_bn(model)
            for images, targets in DataLoader(train_set, batch_size=2, shuffle=True, drop_last=True):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(images), targets).backward()
                optimizer.step()
        """,
        id="batch-norm-put-in-eval-mode-after-train",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_flags(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_flag(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)


@pytest.mark.parametrize(("table", "expected"), [("", 1), ("threshold = 4", 0), ("threshold = 5", 1)])
def test_threshold_option_from_the_configuration(tmp_path: Path, table: str, expected: int) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.bnlint]\n\n[tool.bnlint.rule-options.BN203]\n{table}\n")
    (tmp_path / "train.py").write_text(dedent(
        """
        import torch
        import torch.nn as nn
        from torch.utils.data import DataLoader

        net = nn.Sequential(nn.Linear(10, 10, bias=False), nn.BatchNorm1d(10))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        for x, y in DataLoader(ds, batch_size=4, drop_last=True):
            opt.zero_grad()
            nn.functional.mse_loss(net(x), y).backward()
            opt.step()
        """
    ))
    run = lint_paths([str(tmp_path)], load_config(tmp_path), RunOptions(jobs=1, use_cache=False))
    assert sum(d.code == CODE for result in run.results for d in result.diagnostics) == expected
