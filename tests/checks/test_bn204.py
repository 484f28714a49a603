"""BN204 multi-device-without-syncbn: DataParallel / DistributedDataParallel around a
batch-norm model never converted to SyncBatchNorm, reported at the wrapper call."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnlint.config import load_config
from bnlint.engine import RunOptions, fix_source, lint_paths, lint_source

from .conftest import assert_matches_markers, dedent
from .test_semantics import write_package

CODE = "BN204"

POSITIVE = [
    pytest.param(
        """
        import torch
        import torch.nn as nn
        import torchvision
        from torch.nn.parallel import DistributedDataParallel as DDP


        def train(rank, loader, epochs):
            model = torchvision.models.resnet50().cuda(rank)
            model = DDP(model, device_ids=[rank])  # expect: BN204
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for epoch in range(epochs):
                model.train()
                for images, targets in loader:
                    loss = nn.functional.cross_entropy(model(images), targets)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
        """,
        id="ddp-alias-torchvision-resnet",
    ),
    pytest.param(
        """
        import torch
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(nn.Conv2d(3, 32, 3, bias=False), nn.BatchNorm2d(32), nn.ReLU())
                self.fc = nn.Linear(32, 10)

            def forward(self, x):
                return self.fc(self.features(x).mean((2, 3)))


        model = Net()
        if torch.cuda.device_count() > 1:
            model = nn.DataParallel(model)  # expect: BN204
        model.to("cuda")
        """,
        id="data-parallel-project-class-conditional-gpus",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        from torch.nn.parallel import DistributedDataParallel


        class Trainer:
            def __init__(self, model, rank):
                self.rank = rank
                self.model = DistributedDataParallel(model, device_ids=[rank])  # expect: BN204
                self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)

            def train_epoch(self, loader):
                self.model.train()
                for x, y in loader:
                    loss = nn.functional.mse_loss(self.model(x), y)
                    self.optimizer.zero_grad()
                    loss.backward()
                    self.optimizer.step()


        encoder = nn.Sequential(nn.Linear(64, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 1))
        trainer = Trainer(encoder, rank=0)
        """,
        id="trainer-class-sequential-bn1d",
    ),
    pytest.param(
        """
        import torch
        import torch.distributed as dist
        import torchvision


        def main(local_rank):
            dist.init_process_group("nccl")
            model = torchvision.models.resnet50(weights=None).to(local_rank)
            model = torch.nn.parallel.DistributedDataParallel(  # expect: BN204
                model, device_ids=[local_rank], output_device=local_rank
            )
            return model
        """,
        id="ddp-fully-qualified-multiline",
    ),
    pytest.param(
        """
        import timm
        from torch.nn.parallel import DistributedDataParallel as DDP


        def wrap(model, rank):
            return DDP(model.cuda(rank), device_ids=[rank])  # expect: BN204


        def main(args):
            model = timm.create_model(args.arch, pretrained=True)
            model = wrap(model, args.rank)
            model.train()
        """,
        id="helper-wraps-model-zoo-model",
    ),
    pytest.param(
        """
        from torch import nn
        from torch.nn import DataParallel


        def make_model():
            return nn.Sequential(nn.Conv2d(1, 16, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.Flatten())


        net = DataParallel(make_model(), device_ids=[0, 1])  # expect: BN204
        """,
        id="data-parallel-imported-by-name-factory",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        import torch.nn as nn
        import torchvision
        from torch.nn.parallel import DistributedDataParallel as DDP


        def main(rank):
            model = torchvision.models.resnet50().cuda(rank)
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            model = DDP(model, device_ids=[rank])
            model.train()
        """,
        id="converted-on-a-line-before",
    ),
    pytest.param(
        """
        import torch
        import torchvision


        def main(args):
            model = torchvision.models.resnet50().cuda(args.gpu)
            if args.sync_bn:
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[args.gpu])
            model.train()
        """,
        id="converted-under-a-flag",
    ),
    pytest.param(
        """
        import torchvision
        from torch.nn import SyncBatchNorm
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(SyncBatchNorm.convert_sync_batchnorm(torchvision.models.resnet50()), device_ids=[0])
        """,
        id="converted-inside-the-wrapper-call",
    ),
    pytest.param(
        """
        import torch.nn as nn
        import torchvision
        from torch.nn.parallel import DistributedDataParallel as DDP


        def to_sync_bn(model):
            return nn.SyncBatchNorm.convert_sync_batchnorm(model)


        def main(rank):
            model = to_sync_bn(torchvision.models.resnet50()).cuda(rank)
            model = DDP(model, device_ids=[rank])
            model.train()
        """,
        id="converted-in-a-helper",
    ),
    pytest.param(
        """
        import torch
        import torchvision
        from torch import nn

        encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(512, 8), num_layers=6)
        vit = torchvision.models.vit_b_16()
        encoder = nn.DataParallel(encoder)
        vit = torch.nn.parallel.DistributedDataParallel(vit, device_ids=[0])
        """,
        id="models-without-bn",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        import torchvision

        model = torchvision.models.resnet50().cuda()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for images, targets in loader:
            loss = nn.functional.cross_entropy(model(images.cuda()), targets.cuda())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        """,
        id="single-device-no-wrapper",
    ),
    pytest.param(
        """
        import torch
        import torchvision

        model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        model = torch.nn.DataParallel(model).cuda()
        model.eval()
        with torch.no_grad():
            for images, _ in loader:
                predictions = model(images.cuda()).argmax(1)
        """,
        id="data-parallel-only-for-evaluation",
    ),
    pytest.param(
        """
        import keras
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        with strategy.scope():
            model = keras.applications.ResNet50(weights=None, classes=10)
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(dataset, epochs=10)
        """,
        id="keras-mirrored-strategy-is-not-torch",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_flagged(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_not_flagged(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)


def test_model_from_another_file_of_the_package(tmp_path: Path) -> None:
    package = write_package(tmp_path, "seg", {
        "net": dedent("""
            import torch.nn as nn


            class UNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.down = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64))

                def forward(self, x):
                    return self.down(x)
            """),
        "train": dedent("""
            import torch
            from torch.nn.parallel import DistributedDataParallel as DDP

            from .net import UNet


            def main(rank):
                model = DDP(UNet().cuda(rank), device_ids=[rank])
                model.train()
            """),
    })
    run = lint_paths([str(package)], load_config(package.parent), RunOptions(jobs=1, use_cache=False))
    found = {(Path(result.path).name, d.code, d.line) for result in run.results for d in result.diagnostics}
    assert found == {("train.py", CODE, 8)}


FIXES = [
    pytest.param(
        """
        import torch.nn as nn
        import torchvision
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(torchvision.models.resnet50().cuda(0), device_ids=[0])
        """,
        """
        import torch.nn as nn
        import torchvision
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(nn.SyncBatchNorm.convert_sync_batchnorm(torchvision.models.resnet50().cuda(0)), device_ids=[0])
        """,
        id="nn-alias",
    ),
    pytest.param(
        """
        import torch
        import torchvision

        model = torchvision.models.resnet50()
        model = torch.nn.parallel.DistributedDataParallel(
            model,  # the local replica
            device_ids=[0],
        )
        """,
        """
        import torch
        import torchvision

        model = torchvision.models.resnet50()
        model = torch.nn.parallel.DistributedDataParallel(
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model),  # the local replica
            device_ids=[0],
        )
        """,
        id="only-torch-imported-comment-kept",
    ),
    pytest.param(
        """
        import torchvision
        from torch.nn import SyncBatchNorm
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(module=torchvision.models.resnet50(), device_ids=[0])
        """,
        """
        import torchvision
        from torch.nn import SyncBatchNorm
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(module=SyncBatchNorm.convert_sync_batchnorm(torchvision.models.resnet50()), device_ids=[0])
        """,
        id="sync-batch-norm-imported-by-name-keyword-module",
    ),
]


@pytest.mark.parametrize(("before", "after"), FIXES)
def test_fix(before: str, after: str) -> None:
    before, after = dedent(before), dedent(after)
    assert fix_source(before) == before, "the fix is unsafe: not applied by default"
    fixed = fix_source(before, unsafe=True)
    assert fixed == after
    assert fix_source(fixed, unsafe=True) == fixed, "not idempotent"
    assert CODE not in {d.code for d in lint_source(fixed)}


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            """
            import torch.nn as nn
            import torchvision

            model = nn.DataParallel(torchvision.models.resnet50())
            """,
            id="data-parallel-cannot-sync",
        ),
        pytest.param(
            """
            import torchvision
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(torchvision.models.resnet50(), device_ids=[0])
            """,
            id="torch-nn-not-importable-by-a-visible-name",
        ),
    ],
)
def test_no_fix(source: str) -> None:
    (finding,) = [d for d in lint_source(dedent(source)) if d.code == CODE]
    assert finding.fix is None
