"""BN303 bn-dimension-mismatch: a torch BatchNorm1d/2d/3d whose input rank it cannot take,
reported at the BN constructor."""

from __future__ import annotations

import pytest

from .conftest import assert_matches_markers

CODE = "BN303"

POSITIVE = [
    pytest.param(
        """
        from collections import OrderedDict

        import torch.nn as nn

        projector = nn.Sequential(OrderedDict([
            ("fc1", nn.Linear(2048, 512, bias=False)),
            ("bn1", nn.BatchNorm2d(512)),  # expect: BN303
            ("relu", nn.ReLU(inplace=True)),
            ("fc2", nn.Linear(512, 128)),
        ]))
        """,
        id="linear-then-batchnorm2d-ordered-dict",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class TemporalBlock(nn.Module):
            def __init__(self, channels):
                super().__init__()
                self.conv = nn.Conv1d(channels, channels, kernel_size=3, padding=1, bias=False)
                self.bn = nn.BatchNorm2d(channels)  # expect: BN303

            def forward(self, x):
                return self.bn(self.conv(x)).relu()
        """,
        id="conv1d-then-batchnorm2d",
    ),
    pytest.param(
        """
        from torch import nn

        features = nn.Sequential(
            nn.Conv2d(3, 32, 3, bias=False),
            nn.ReLU(),
            nn.BatchNorm1d(32),  # expect: BN303
        )
        """,
        id="conv2d-relu-batchnorm1d",
    ),
    pytest.param(
        """
        import torch.nn as nn
        from torch.nn import BatchNorm2d as BN


        def conv3d_bn(in_planes, out_planes):
            return nn.Sequential(
                nn.Conv3d(in_planes, out_planes, kernel_size=3, padding=1, bias=False),
                BN(out_planes),  # expect: BN303
            )
        """,
        id="conv3d-then-aliased-batchnorm2d-in-helper",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Classifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.pool = nn.AdaptiveAvgPool2d(1)
                self.fc = nn.Linear(512, 256, bias=False)
                self.bn = nn.BatchNorm1d(256)
                self.conv = nn.Conv2d(512, 512, 1, bias=False)
                self.bn_feat = nn.BatchNorm1d(512)  # expect: BN303

            def forward(self, x):
                x = self.bn_feat(self.pool(self.conv(x)))
                x = torch.flatten(x, 1)
                return self.bn(self.fc(x))
        """,
        id="pool-keeps-rank-4",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Head(nn.Module):
            def __init__(self, channels):
                super().__init__()
                self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
                self.bn = nn.BatchNorm2d(channels)  # expect: BN303

            def forward(self, x):
                x = self.avgpool(x)
                x = torch.flatten(x, 1)
                return self.bn(x)
        """,
        id="torch-flatten-start-dim-1-gives-rank-2",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Head(nn.Module):
            def __init__(self, channels):
                super().__init__()
                self.bn = nn.BatchNorm2d(channels)  # expect: BN303

            def forward(self, x):
                x = torch.flatten(x, 1)
                return self.bn(x)
        """,
        id="flatten-of-forward-input-gives-rank-2",
    ),
    pytest.param(
        """
        import torch.nn as nn

        head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.BatchNorm2d(512),  # expect: BN303
        )
        """,
        id="nn-flatten-gives-rank-2",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Decoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(128, 256, bias=False)
                self.bn = nn.BatchNorm3d(256)  # expect: BN303

            def forward(self, z):
                return self.bn(self.fc(z))
        """,
        id="linear-then-batchnorm3d-forward",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        import torch.nn as nn

        block = nn.Sequential(nn.Conv1d(80, 256, 5, padding=2, bias=False), nn.BatchNorm1d(256), nn.ReLU())
        """,
        id="conv1d-batchnorm1d",
    ),
    pytest.param(
        """
        import torch.nn as nn

        head = nn.Sequential(nn.Linear(2048, 512, bias=False), nn.BatchNorm1d(512), nn.ReLU(inplace=True))
        """,
        id="linear-batchnorm1d",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class C3D(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv3d(3, 64, kernel_size=3, padding=1, bias=False)
                self.bn = nn.BatchNorm3d(64)
                self.pool = nn.MaxPool3d((1, 2, 2))

            def forward(self, x):
                return self.pool(self.bn(self.conv(x)).relu())
        """,
        id="conv3d-batchnorm3d-pool",
    ),
    pytest.param(
        """
        import torch.nn as nn

        head = nn.Sequential(nn.Linear(2048, 512, bias=False), nn.SyncBatchNorm(512))
        features = nn.Sequential(nn.Conv2d(3, 64, 3, bias=False), nn.SyncBatchNorm(64))
        """,
        id="sync-batchnorm-any-rank",
    ),
    pytest.param(
        """
        from tensorflow import keras
        from tensorflow.keras import layers

        model = keras.Sequential([
            layers.Dense(256, use_bias=False),
            layers.BatchNormalization(),
            layers.Conv1D(64, 3, use_bias=False),
            layers.BatchNormalization(),
        ])
        """,
        id="keras-never",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(512, 64, 1, bias=False)
                self.bn = nn.BatchNorm1d(64 * 7 * 7)

            def forward(self, x):
                x = self.conv(x)
                return self.bn(x.view(x.size(0), -1))
        """,
        id="view-to-unknown-rank",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn1d = nn.BatchNorm1d(64)
                self.conv = nn.Conv2d(3, 64, 3, bias=False)
                self.bn2d = nn.BatchNorm2d(64)

            def forward(self, x):
                x = self.bn2d(self.conv(x))
                return self.bn1d(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
        """,
        id="declaration-order-trap-1d-declared-first",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class SpatialBlock(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(64, 64, 3, padding=1, bias=False)
                self.bn = nn.BatchNorm2d(64)

            def forward(self, x):
                b, c, h, w = x.shape
                y = self.conv(x).flatten(2)
                return self.bn(y.reshape(b, c, h, w))
        """,
        id="reshape-back-to-rank-4",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_rank_mismatch_at_bn_constructor(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)
