"""BN201 batch-size-one: a batch-norm model trained on batches of one sample, reported at
the batch-size argument (the DataLoader call when the default applies) or at the
one-sample input."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import assert_matches_markers, lint_package, package_markers

CODE = "BN201"

POSITIVE = [
    pytest.param(
        """
        import torch
        import torch.nn as nn
        from torch.utils.data import DataLoader


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(20, 64, bias=False)
                self.bn1 = nn.BatchNorm1d(64)
                self.fc2 = nn.Linear(64, 2)

            def forward(self, x):
                return self.fc2(torch.relu(self.bn1(self.fc1(x))))


        def main(train_set, val_set):
            model = Net()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            train_loader = DataLoader(train_set, batch_size=1, shuffle=True)  # expect: BN201
            val_loader = DataLoader(val_set, batch_size=1)
            for epoch in range(10):
                model.train()
                for x, y in train_loader:
                    optimizer.zero_grad()
                    loss = nn.functional.cross_entropy(model(x), y)
                    loss.backward()
                    optimizer.step()
                model.eval()
                with torch.no_grad():
                    for x, y in val_loader:
                        model(x)
        """,
        id="epoch-loop-with-validation-only-train-loader",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torch.utils.data import DataLoader

        BATCH_SIZE = 1


        def train_one_epoch(model, loader, optimizer, device):
            model.train()
            for i, (images, targets) in enumerate(loader):
                images, targets = images.to(device), targets.to(device)
                loss = torch.nn.functional.cross_entropy(model(images), targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()


        def main(dataset):
            model = torchvision.models.resnet50(num_classes=10).cuda()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=4)  # expect: BN201
            for epoch in range(90):
                train_one_epoch(model, loader, optimizer, "cuda")
        """,
        id="module-constant-helper-enumerate-torchvision",
    ),
    pytest.param(
        """
        import torch
        from torch import nn
        from torch.utils.data import DataLoader
        from tqdm import tqdm


        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


        class Generator(nn.Module):
            def __init__(self):
                super().__init__()
                self.down = nn.Sequential(block(3, 64), block(64, 128))
                self.up = nn.ConvTranspose2d(128, 3, 4, 4)

            def forward(self, x):
                return torch.tanh(self.up(self.down(x)))


        def train(dataset, epochs=200):
            netG = Generator()
            opt = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
            loader = DataLoader(dataset, shuffle=True)  # expect: BN201
            for epoch in range(epochs):
                for real_a, real_b in tqdm(loader):
                    fake_b = netG(real_a)
                    loss = nn.functional.l1_loss(fake_b, real_b)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        """,
        id="pix2pix-default-batch-size-tqdm",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Trainer:
            def __init__(self, model, loader, lr=0.01):
                self.model = model
                self.loader = loader
                self.optimizer = torch.optim.SGD(model.parameters(), lr=lr)

            def train_epoch(self):
                self.model.train()
                for x, y in self.loader:
                    self.optimizer.zero_grad()
                    nn.functional.mse_loss(self.model(x), y).backward()
                    self.optimizer.step()

            def fit(self, epochs):
                for _ in range(epochs):
                    self.train_epoch()


        if __name__ == "__main__":
            net = nn.Sequential(nn.Linear(8, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))
            data = torch.utils.data.TensorDataset(torch.randn(256, 8), torch.randn(256, 1))
            loader = torch.utils.data.DataLoader(data, batch_size=1)  # expect: BN201
            Trainer(net, loader).fit(5)
        """,
        id="trainer-class-sequential",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(32, 16, bias=False)
                self.norm = nn.BatchNorm1d(16)

            def forward(self, x):
                return self.norm(self.proj(x))


        encoder = Encoder()
        out = encoder(torch.randn(1, 32))  # expect: BN201
        """,
        id="one-sample-input-in-train-mode",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        model = keras.Sequential([
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 3, use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.GlobalAveragePooling2D(),
            layers.Dense(10, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x_train, y_train, batch_size=1, epochs=5, validation_split=0.1)  # expect: BN201
        """,
        id="keras-fit-batch-size",
    ),
    pytest.param(
        """
        import tensorflow as tf
        from tensorflow import keras
        from tensorflow.keras import layers

        inputs = keras.Input(shape=(64,))
        x = layers.Dense(64, use_bias=False)(inputs)
        x = layers.BatchNormalization()(x)
        outputs = layers.Dense(1)(layers.ReLU()(x))
        model = keras.Model(inputs, outputs)
        optimizer = keras.optimizers.Adam()

        train_ds = tf.data.Dataset.from_tensor_slices((features, labels)).shuffle(1000).batch(1)  # expect: BN201


        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))


        for epoch in range(10):
            for x, y in train_ds:
                train_step(x, y)
        """,
        id="keras-custom-loop-tf-data-batch",
    ),
    pytest.param(
        """
        import tensorflow as tf
        from tensorflow import keras

        base = keras.applications.ResNet50(weights=None, classes=5)
        base.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size=1).prefetch(2)  # expect: BN201
        base.fit(ds, epochs=3)
        """,
        id="keras-applications-fit-dataset",
    ),
    pytest.param(
        """
        import argparse

        import torch
        from torch import nn
        from torch.utils.data import DataLoader


        def main():
            parser = argparse.ArgumentParser(description="pix2pix")
            parser.add_argument("--dataroot", required=True)
            parser.add_argument("--batch_size", type=int, default=1, help="input batch size")
            parser.add_argument("--lr", type=float, default=0.0002)
            opt = parser.parse_args()

            netG = nn.Sequential(nn.Conv2d(3, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(True))
            optimizer_G = torch.optim.Adam(netG.parameters(), lr=opt.lr, betas=(0.5, 0.999))
            loader = DataLoader(AlignedDataset(opt.dataroot), batch_size=opt.batch_size, shuffle=True)  # expect: BN201
            for epoch in range(200):
                for data in loader:
                    optimizer_G.zero_grad()
                    nn.functional.l1_loss(netG(data["A"]), data["B"]).backward()
                    optimizer_G.step()
        """,
        id="argparse-default-pix2pix",
    ),
]

NEGATIVE = [
    # A shape check on one image: no training step, and BatchNorm2d has many values per channel.
    pytest.param(
        """
        import torch
        import torchvision

        if __name__ == "__main__":
            model = torchvision.models.resnet50(num_classes=10)
            dummy = torch.zeros(1, 3, 224, 224)
            logits = model(dummy.to("cuda"))
            print(logits.shape, model(dummy).shape)
        """,
        id="shape-check-on-one-image",
    ),
    pytest.param(
        """
        import argparse

        import torch
        import torchvision
        from torch.utils.data import DataLoader

        parser = argparse.ArgumentParser()
        parser.add_argument("--batch-size", type=int, default=1)
        args = parser.parse_args()
        args.batch_size *= torch.cuda.device_count()

        model = torchvision.models.resnet50()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
        for images, labels in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
        """,
        id="command-line-batch-size-scaled-after-parsing",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torch.utils.data import DataLoader

        from config import cfg

        model = torchvision.models.resnet50()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True)
        for images, labels in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
        """,
        id="batch-size-from-a-config-object",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        from torch.utils.data import DataLoader


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(20, 64, bias=False)
                self.bn = nn.BatchNorm1d(64)

            def forward(self, x):
                return self.bn(self.fc(x))


        def evaluate(model, loader):
            model.eval()
            correct = 0
            with torch.no_grad():
                for x, y in loader:
                    correct += (model(x).argmax(1) == y).sum().item()
            return correct


        def main(train_set, test_set):
            model = Net()
            optimizer = torch.optim.Adam(model.parameters())
            train_loader = DataLoader(train_set, batch_size=64, shuffle=True, drop_last=True)
            test_loader = DataLoader(test_set, batch_size=1)
            for epoch in range(5):
                model.train()
                for x, y in train_loader:
                    optimizer.zero_grad()
                    nn.functional.cross_entropy(model(x), y).backward()
                    optimizer.step()
                evaluate(model, test_loader)
        """,
        id="batch-one-only-for-evaluation",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        from torch.utils.data import DataLoader


        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(20, 64), nn.LayerNorm(64), nn.ReLU(), nn.Linear(64, 2))

            def forward(self, x):
                return self.net(x)


        model = MLP()
        optimizer = torch.optim.Adam(model.parameters())
        for x, y in DataLoader(dataset, batch_size=1):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        """,
        id="model-without-batch-norm",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torch.utils.data import DataLoader

        loader_kwargs = {"num_workers": 4, "pin_memory": True}
        model = torchvision.models.resnet50()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(dataset, shuffle=True, **loader_kwargs)
        for images, labels in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
        """,
        id="unpacked-kwargs-may-set-batch-size",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torch.utils.data import DataLoader

        model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        model.eval()  # frozen batch-norm statistics: fine-tuning in eval mode
        optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.01)
        for images, labels in DataLoader(dataset, batch_size=1, shuffle=True):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
        """,
        id="fine-tuning-in-eval-mode",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(32, 16, bias=False)
                self.norm = nn.BatchNorm1d(16)

            def forward(self, x):
                return self.norm(self.proj(x))


        encoder = Encoder()
        encoder.eval()
        print(encoder(torch.randn(1, 32)).shape)
        with torch.no_grad():
            print(encoder(torch.randn(1, 32)).shape)
        encoder.train()
        print(encoder(torch.randn(4, 32)).shape)
        """,
        id="one-sample-input-in-eval-mode-or-no-grad",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        model = keras.Sequential([
            keras.Input(shape=(8,)), layers.Dense(16, use_bias=False), layers.BatchNormalization(), layers.Dense(1)
        ])
        model.compile(optimizer="adam", loss="mse")
        model.fit(x_train, y_train, batch_size=32, epochs=5)
        predictions = model.predict(x_test, batch_size=1)
        model.evaluate(x_test, y_test, batch_size=1)
        """,
        id="keras-batch-one-for-predict-and-evaluate",
    ),
    pytest.param(
        """
        import tensorflow as tf
        from tensorflow import keras
        from tensorflow.keras import layers

        model = keras.Sequential([keras.Input(shape=(8,)), layers.Dense(16), layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(1), epochs=5)
        """,
        id="keras-model-without-batch-norm",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torch.utils.data import DataLoader

        model = torchvision.models.resnet50()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for images, labels in DataLoader(prebatched_shards, batch_size=None, num_workers=4):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
        """,
        id="automatic-batching-off",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_flags(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_flag(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)


def test_model_and_training_loop_in_other_files(tmp_path: Path) -> None:
    modules = {
        "models": """
            import torch.nn as nn


            class SegHead(nn.Module):
                def __init__(self, channels, classes):
                    super().__init__()
                    self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
                    self.bn = nn.BatchNorm2d(channels)
                    self.classifier = nn.Conv2d(channels, classes, 1)

                def forward(self, x):
                    return self.classifier(self.bn(self.conv(x)).relu())
            """,
        "engine": """
            import torch


            def train_one_epoch(model, loader, optimizer):
                model.train()
                for images, masks in loader:
                    loss = torch.nn.functional.cross_entropy(model(images), masks)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            """,
        "train": """
            import torch
            from torch.utils.data import DataLoader

            from proj.engine import train_one_epoch
            from .models import SegHead


            def main(train_set):
                model = SegHead(256, 21)
                optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
                loader = DataLoader(train_set, batch_size=1, shuffle=True)  # expect: BN201
                for epoch in range(30):
                    train_one_epoch(model, loader, optimizer)
            """,
    }
    assert lint_package(tmp_path, modules, {CODE}) == package_markers(modules)


def test_loader_factory_in_another_file_is_reported_in_the_factory(tmp_path: Path) -> None:
    modules = {
        "data": """
            from torch.utils.data import DataLoader


            def make_loader(dataset, batch_size=1, train=True):
                return DataLoader(dataset, batch_size=batch_size, shuffle=train)  # expect: BN201
            """,
        "train": """
            import torch
            import torchvision

            from proj.data import make_loader


            def main(train_set, val_set):
                model = torchvision.models.resnet50()
                optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
                loader = make_loader(train_set)
                val_loader = make_loader(val_set, 64, train=False)
                for epoch in range(5):
                    model.train()
                    for x, y in loader:
                        optimizer.zero_grad()
                        torch.nn.functional.cross_entropy(model(x), y).backward()
                        optimizer.step()
                    model.eval()
                    with torch.no_grad():
                        for x, y in val_loader:
                            model(x)
            """,
    }
    assert lint_package(tmp_path, modules, {CODE}) == package_markers(modules)
