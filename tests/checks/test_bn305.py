"""BN305 dropout-before-bn: dropout feeding a BN directly (or through shape-only ops),
reported at the BN constructor."""

from __future__ import annotations

import pytest

from .conftest import assert_matches_markers

CODE = "BN305"

POSITIVE = [
    pytest.param(
        """
        import torch.nn as nn

        classifier = nn.Sequential(
            nn.Linear(2048, 512, bias=False),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.BatchNorm1d(512),  # expect: BN305
            nn.Linear(512, 10),
        )
        """,
        id="torch-sequential-dropout-bn1d",
    ),
    pytest.param(
        """
        from torch import nn


        class Head(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.drop = nn.Dropout(0.3)
                self.bn = nn.BatchNorm1d(dim)  # expect: BN305

            def forward(self, x):
                x = self.drop(x)
                return self.bn(x)
        """,
        id="init-forward",
    ),
    pytest.param(
        """
        import torch.nn as nn
        import torch.nn.functional as F


        class Block(nn.Module):
            def __init__(self, channels, drop_rate=0.2):
                super().__init__()
                self.drop_rate = drop_rate
                self.norm = nn.BatchNorm2d(channels)  # expect: BN305

            def forward(self, x):
                x = F.dropout(x, p=self.drop_rate, training=self.training)
                return self.norm(x)
        """,
        id="functional-dropout",
    ),
    pytest.param(
        """
        from collections import OrderedDict

        import torch.nn as nn
        from torch.nn import BatchNorm2d as BN

        features = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(64, 64, 3, padding=1, bias=False)),
            ("relu", nn.ReLU(inplace=True)),
            ("drop", nn.Dropout2d(0.1)),
            ("bn", BN(64)),  # expect: BN305
        ]))
        """,
        id="dropout2d-ordered-dict-aliased-bn",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm1d(64 * 7 * 7)  # expect: BN305
                self.dropout = nn.Dropout(0.5)

            def forward(self, x):
                x = self.dropout(x)
                return self.bn(x.view(x.size(0), -1))
        """,
        id="through-view-declared-before-dropout",
    ),
    pytest.param(
        """
        from tensorflow import keras
        from tensorflow.keras import layers

        inputs = keras.Input(shape=(128,))
        x = layers.Dense(256, activation="relu")(inputs)
        x = layers.Dropout(0.4)(x)
        x = layers.BatchNormalization()(x)  # expect: BN305
        outputs = layers.Dense(10, activation="softmax")(x)
        """,
        id="keras-functional",
    ),
    pytest.param(
        """
        import tensorflow as tf

        model = tf.keras.Sequential([
            tf.keras.layers.Conv2D(32, 3, activation="relu"),
            tf.keras.layers.SpatialDropout2D(0.2),
            tf.keras.layers.BatchNormalization(),  # expect: BN305
        ])
        """,
        id="keras-sequential-spatial-dropout",
    ),
    pytest.param(
        """
        from keras import layers
        import keras


        class Tower(keras.Model):
            def __init__(self):
                super().__init__()
                self.dense = layers.Dense(64, activation="relu")
                self.dropout = layers.Dropout(0.5)
                self.norm = layers.BatchNormalization()  # expect: BN305

            def call(self, x, training=False):
                x = self.dropout(self.dense(x), training=training)
                return self.norm(x, training=training)
        """,
        id="keras-subclassed",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class MLP(nn.Module):
            def __init__(self, d_input, d_hidden, d_output, dropout=0.1, batch_norm=True):
                super().__init__()
                self.dropout = nn.Dropout(dropout)
                layers = []
                width = d_input
                for d in d_hidden:
                    layers.append(nn.Linear(width, d))
                    layers.append(self.dropout)
                    if batch_norm:
                        layers.append(nn.BatchNorm1d(d))  # expect: BN305
                    width = d
                layers.append(nn.Linear(width, d_output))
                self.model = nn.Sequential(*layers)
        """,
        id="optional-bn-after-dropout-in-a-loop-built-list",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        import torch.nn as nn

        head = nn.Sequential(nn.Dropout(p=0.0), nn.BatchNorm1d(256))
        tower = nn.Sequential(nn.Dropout(0), nn.BatchNorm1d(256))
        """,
        id="dropout-p-zero",
    ),
    pytest.param(
        """
        import torch.nn.functional as F
        from torch import nn


        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm1d(256)

            def forward(self, x):
                return self.bn(F.dropout(x, p=0.0, training=self.training))
        """,
        id="functional-dropout-p-zero",
    ),
    pytest.param(
        """
        import torch.nn as nn

        head = nn.Sequential(nn.Dropout(0.5), nn.ReLU(), nn.BatchNorm1d(256))
        """,
        id="dropout-relu-bn",
    ),
    pytest.param(
        """
        import torch.nn as nn

        head = nn.Sequential(
            nn.BatchNorm1d(2048),
            nn.Dropout(0.5),
            nn.Linear(2048, 512, bias=False),
            nn.BatchNorm1d(512),
        )
        """,
        id="bn-dropout-linear-bn",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.drop = nn.Dropout(0.5)
                self.bn = nn.BatchNorm1d(256)

            def forward(self, x):
                return self.drop(self.bn(x))
        """,
        id="declaration-order-trap-bn-runs-first",
    ),
    pytest.param(
        """
        from tensorflow import keras
        from tensorflow.keras import layers

        model = keras.Sequential([
            layers.Dense(128, use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.Dropout(0.3),
            layers.Dense(10),
        ])
        """,
        id="keras-dropout-after-bn",
    ),
    pytest.param(
        """
        from keras import layers

        inputs = layers.Input(shape=(64,))
        x = layers.Dropout(0.3)(inputs)
        x = layers.Activation("relu")(x)
        x = layers.BatchNormalization()(x)
        """,
        id="keras-dropout-activation-bn",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Mlp(nn.Module):
            def __init__(self, dim, hidden, drop=0.0):
                super().__init__()
                self.fc1 = nn.Linear(dim, hidden, bias=False)
                self.drop = nn.Dropout(drop)
                self.norm = nn.BatchNorm1d(hidden)

            def forward(self, x):
                return self.norm(self.drop(self.fc1(x)))
        """,
        id="dropout-rate-defaults-to-zero",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_at_bn_constructor(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)
