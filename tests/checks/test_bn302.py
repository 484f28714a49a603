"""BN302 num-features-mismatch: reported at the BN constructor whose num_features (torch)
or axis (keras) disagrees with the channels of the layer feeding it."""

from __future__ import annotations

import pytest

from .conftest import assert_matches_markers

CODE = "BN302"

POSITIVE = [
    pytest.param(
        """
        import torch.nn as nn

        stem = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(32),  # expect: BN302
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        """,
        id="torch-sequential-literals",
    ),
    pytest.param(
        """
        from torch import nn

        STEM_CHANNELS = 64


        class Stem(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, STEM_CHANNELS, 3, padding=1, bias=False)
                self.bn = nn.BatchNorm2d(32)  # expect: BN302

            def forward(self, x):
                return self.bn(self.conv(x)).relu()
        """,
        id="module-constant-in-init-forward",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Bottleneck(nn.Module):
            expansion = 4

            def __init__(self, inplanes, planes, stride=1, norm_layer=None):
                super().__init__()
                if norm_layer is None:
                    norm_layer = nn.BatchNorm2d
                self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
                self.bn1 = norm_layer(planes)
                self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
                self.bn2 = norm_layer(planes)
                self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
                self.bn3 = norm_layer(planes)  # expect: BN302
                self.relu = nn.ReLU(inplace=True)

            def forward(self, x):
                identity = x
                out = self.relu(self.bn1(self.conv1(x)))
                out = self.relu(self.bn2(self.conv2(out)))
                out = self.bn3(self.conv3(out))
                return self.relu(out + identity)
        """,
        id="class-attribute-expansion-norm-layer-default",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Widen(nn.Module):
            def __init__(self, channels):
                super().__init__()
                self.conv = nn.Conv2d(channels, channels * 2, 3, padding=1, bias=False)
                self.bn = nn.BatchNorm2d(channels)  # expect: BN302

            def forward(self, x):
                return self.bn(self.conv(x))
        """,
        id="linear-form-c-vs-2c",
    ),
    pytest.param(
        """
        from torch.nn import BatchNorm2d as BN
        from torch.nn import Conv2d, MaxPool2d, Module, ReLU


        class Block(Module):
            def __init__(self):
                super().__init__()
                self.conv = Conv2d(64, 128, 3, padding=1, bias=False)
                self.act = ReLU()
                self.pool = MaxPool2d(2)
                self.bn = BN(64)  # expect: BN302

            def forward(self, x):
                return self.bn(self.pool(self.act(self.conv(x))))
        """,
        id="aliased-import-conv-relu-pool-bn",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(3, 32, 3, padding=1, bias=False)
                self.bn1 = nn.BatchNorm2d(32)  # expect: BN302
                self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
                self.bn2 = nn.BatchNorm2d(64)

            def forward(self, x):
                x = self.bn1(self.conv1(x)).relu()
                return self.bn1(self.conv2(x)).relu()  # copy-paste slip: bn1 instead of bn2
        """,
        id="declaration-order-trap-forward-reuses-bn",
    ),
    pytest.param(
        """
        import torch.nn as nn

        head = nn.Sequential(
            nn.Linear(2048, 512, bias=False),
            nn.BatchNorm1d(2048),  # expect: BN302
            nn.ReLU(inplace=True),
            nn.Linear(512, 128),
        )
        """,
        id="linear-out-features",
    ),
    pytest.param(
        """
        from collections import OrderedDict

        import torch.nn as nn

        features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(64)),
            ("relu0", nn.ReLU(inplace=True)),
            ("norm1", nn.BatchNorm2d(96)),  # expect: BN302
        ]))
        """,
        id="ordered-dict-previous-bn",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def conv_bn(in_channels, out_channels, stride=1):
            layers = []
            layers.append(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False))
            layers.append(nn.BatchNorm2d(in_channels))  # expect: BN302
            layers.append(nn.ReLU6(inplace=True))
            return nn.Sequential(*layers)


        stem = conv_bn(3, 32, stride=2)
        """,
        id="helper-layers-list-called-with-literals",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class ConvBNAct(nn.Sequential):
            def __init__(self, in_planes, out_planes):
                super().__init__(
                    nn.Conv2d(in_planes, 2 * out_planes, 3, padding=1, bias=False),
                    nn.BatchNorm2d(out_planes),  # expect: BN302
                    nn.SiLU(inplace=True),
                )
        """,
        id="sequential-subclass-super-init",
    ),
    pytest.param(
        """
        from tensorflow import keras
        from tensorflow.keras import layers

        inputs = keras.Input(shape=(3, 224, 224))
        x = layers.Conv2D(32, 3, padding="same", use_bias=False, data_format="channels_first")(inputs)
        x = layers.BatchNormalization()(x)  # expect: BN302
        x = layers.ReLU()(x)
        model = keras.Model(inputs, x)
        """,
        id="keras-functional-channels-first-default-axis",
    ),
    pytest.param(
        """
        import tensorflow as tf

        model = tf.keras.Sequential([
            tf.keras.layers.Conv2D(64, 3, use_bias=False),
            tf.keras.layers.BatchNormalization(axis=1),  # expect: BN302
            tf.keras.layers.Activation("relu"),
        ])
        """,
        id="keras-sequential-default-format-axis-1",
    ),
    pytest.param(
        """
        from keras import layers, models

        model = models.Sequential()
        model.add(layers.Conv2D(32, (3, 3), use_bias=False, data_format="channels_first"))
        model.add(layers.Activation("relu"))
        model.add(layers.BatchNormalization(axis=-1))  # expect: BN302
        """,
        id="keras-model-add-through-activation",
    ),
    pytest.param(
        """
        from tensorflow import keras
        from tensorflow.keras import layers


        class ConvBlock(keras.Model):
            def __init__(self, filters):
                super().__init__()
                self.conv = layers.Conv2D(filters, 3, use_bias=False, data_format="channels_first")
                self.bn = layers.BatchNormalization(axis=3)  # expect: BN302

            def call(self, inputs, training=False):
                return self.bn(self.conv(inputs), training=training)
        """,
        id="keras-subclassed-call",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Stem(nn.Module):
            def __init__(self, in_channels=3, width=64):
                super().__init__()
                self.conv = nn.Conv2d(in_channels, width, 3, bias=False)
                self.bn = nn.BatchNorm2d(32)  # expect: BN302

            def forward(self, x):
                return self.bn(self.conv(x))
        """,
        id="default-argument-disagrees",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Fire(nn.Module):
            def __init__(self, in_channels, squeeze, expand):
                super().__init__()
                self.squeeze = nn.Conv2d(in_channels, squeeze, 1, bias=False)
                self.expand1x1 = nn.Conv2d(squeeze, expand, 1, bias=False)
                self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1, bias=False)
                self.bn = nn.BatchNorm2d(expand)  # expect: BN302
                self.relu = nn.ReLU(inplace=True)

            def forward(self, x):
                x = self.squeeze(x)
                x = torch.cat([self.expand1x1(x), self.expand3x3(x)], 1)
                return self.bn(self.relu(x))
        """,
        id="torch-cat-along-channels-adds-them-up",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self, inplanes, width):
                super().__init__()
                self.conv = nn.Conv2d(inplanes, width, 3, padding=1, bias=False)
                self.bn = nn.BatchNorm2d(width)

            def forward(self, x):
                return self.bn(self.conv(x))
        """,
        id="symbolic-width-matches",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Bottleneck(nn.Module):
            expansion = 4

            def __init__(self, inplanes, planes, norm_layer=None):
                super().__init__()
                if norm_layer is None:
                    norm_layer = nn.BatchNorm2d
                self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
                self.bn3 = norm_layer(planes * self.expansion)

            def forward(self, x):
                return self.bn3(self.conv3(x))
        """,
        id="class-attribute-expansion-matches",
    ),
    pytest.param(
        """
        import torch.nn as nn
        from timm.layers import make_divisible


        class InvertedResidual(nn.Module):
            def __init__(self, in_chs, exp_ratio=6.0):
                super().__init__()
                mid_chs = make_divisible(in_chs * exp_ratio)
                self.conv_pw = nn.Conv2d(in_chs, mid_chs, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(in_chs)

            def forward(self, x):
                return self.bn1(self.conv_pw(x))
        """,
        id="unknown-expression-never-reported",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def conv_bn(in_channels, out_channels):
            return nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(in_channels),
            )
        """,
        id="distinct-parameters-may-be-equal",
    ),
    pytest.param(
        """
        import torch.nn as nn

        classifier = nn.Sequential(
            nn.Conv2d(64, 16, 3, bias=False),
            nn.Flatten(),
            nn.BatchNorm1d(16 * 30 * 30),
        )
        """,
        id="flatten-between-changes-channels",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(64, 64, 3, padding=1, bias=False)
                self.bn_unused_order = nn.BatchNorm2d(32)
                self.proj = nn.Conv2d(64, 32, 1, bias=False)

            def forward(self, x):
                return self.bn_unused_order(self.proj(self.conv(x)))
        """,
        id="declaration-order-trap-forward-matches",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Fuse(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Conv2d(64, 32, 1, bias=False)
                self.b = nn.Conv2d(64, 32, 1, bias=False)
                self.bn = nn.BatchNorm2d(64)

            def forward(self, x):
                return self.bn(torch.cat([self.a(x), self.b(x)], dim=1))
        """,
        id="concat-of-two-convs",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Residual(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(64, 64, 3, padding=1, bias=False)
                self.bn = nn.SyncBatchNorm(64)

            def forward(self, x):
                return self.bn(self.conv(x)) + x
        """,
        id="sync-batchnorm-matches",
    ),
    pytest.param(
        """
        from tensorflow import keras
        from tensorflow.keras import layers

        inputs = keras.Input(shape=(3, 224, 224))
        x = layers.Conv2D(32, 3, use_bias=False, data_format="channels_first")(inputs)
        x = layers.BatchNormalization(axis=1)(x)
        """,
        id="keras-channels-first-axis-1",
    ),
    pytest.param(
        """
        from keras import layers

        inputs = layers.Input(shape=(224, 224, 3))
        x = layers.Conv2D(32, 3, use_bias=False)(inputs)
        x = layers.BatchNormalization()(x)
        y = layers.Conv2D(32, 3, use_bias=False, data_format="channels_last")(x)
        y = layers.BatchNormalization(axis=3)(y)
        """,
        id="keras-channels-last-default-and-rank-minus-one",
    ),
    pytest.param(
        """
        import tensorflow as tf

        model = tf.keras.Sequential([
            tf.keras.layers.Conv1D(64, 5, use_bias=False),
            tf.keras.layers.BatchNormalization(axis=2),
            tf.keras.layers.GlobalAveragePooling1D(),
        ])
        """,
        id="keras-conv1d-axis-2",
    ),
    pytest.param(
        """
        from keras import backend, layers

        if backend.image_data_format() == "channels_last":
            bn_axis = 3
        else:
            bn_axis = 1
        img_input = layers.Input(shape=(224, 224, 3))
        x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(img_input)
        x = layers.BatchNormalization(axis=bn_axis, epsilon=1.001e-5, name="conv1_bn")(x)
        """,
        id="keras-applications-axis-from-image-data-format",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Stem(nn.Module):
            def __init__(self, in_channels, width=64):
                super().__init__()
                self.conv = nn.Conv2d(in_channels, width, 3, bias=False)
                self.bn = nn.BatchNorm2d(in_channels)  # in_channels has no default: may equal width

            def forward(self, x):
                return self.bn(self.conv(x))
        """,
        id="no-default-to-compare",
    ),
    pytest.param(
        """
        import tensorflow as tf


        class ConvBlock(tf.keras.layers.Layer):
            def __init__(self, filters):
                super().__init__()
                if tf.keras.backend.image_data_format() == "channels_last":
                    self._bn_axis = -1
                else:
                    self._bn_axis = 1
                self._conv = tf.keras.layers.Conv2D(filters, 3, use_bias=False)
                self._norm = tf.keras.layers.BatchNormalization(axis=self._bn_axis)

            def call(self, inputs):
                return self._norm(self._conv(inputs))
        """,
        id="keras-axis-chosen-per-branch-on-self",
    ),
    pytest.param(
        """
        import torch
        from torch import nn


        class Branches(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.a = nn.Conv2d(c, c, 1, bias=False)
                self.b = nn.Conv2d(c, 2 * c, 3, padding=1, bias=False)
                self.bn = nn.BatchNorm2d(3 * c)
                self.bn_batch = nn.BatchNorm2d(c)
                self.pool = nn.AdaptiveAvgPool2d(1)

            def forward(self, x, extra):
                joined = torch.cat((self.a(x), self.b(x)), dim=1)
                stacked = torch.cat([self.a(x), self.a(x)], dim=0)  # along the batch: channels stay c
                opaque = torch.cat([self.a(x), extra], 1)  # extra's channels are unknown
                return self.bn(joined), self.bn_batch(stacked), self.bn(opaque)
        """,
        id="torch-cat-right-sum-batch-axis-or-unknown-part",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_mismatch_at_bn_constructor(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)
