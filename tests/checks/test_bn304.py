"""BN304 redundant-bias: a conv/linear/dense bias whose every use feeds a BN (directly or
through shape-only ops), reported at the conv/linear/dense constructor."""

from __future__ import annotations

import pytest

from bnlint.engine import fix_source, lint_source

from .conftest import assert_matches_markers, dedent

CODE = "BN304"

POSITIVE = [
    pytest.param(
        """
        import torch.nn as nn


        def conv_bn(inp, oup, stride):
            return nn.Sequential(
                nn.Conv2d(inp, oup, 3, stride, 1),  # expect: BN304
                nn.BatchNorm2d(oup),
                nn.ReLU6(inplace=True),
            )
        """,
        id="mobilenet-helper-default-bias",
    ),
    pytest.param(
        """
        from torch import nn


        class Stem(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=True)  # expect: BN304
                self.bn = nn.BatchNorm2d(64)

            def forward(self, x):
                return self.bn(self.conv(x)).relu()
        """,
        id="explicit-bias-true-init-forward",
    ),
    pytest.param(
        """
        import torch.nn as nn

        block = nn.Sequential(
            nn.Conv2d(64, 64, 3, 1, 1, 1, 1, True),  # expect: BN304
            nn.BatchNorm2d(64),
        )
        """,
        id="positional-bias-true",
    ),
    pytest.param(
        """
        import torch.nn as nn
        from torch.nn import BatchNorm1d as BN1d


        class ProjectionHead(nn.Module):
            def __init__(self, in_dim=2048, hidden_dim=512):
                super().__init__()
                self.fc = nn.Linear(in_dim, hidden_dim)  # expect: BN304
                self.bn = BN1d(hidden_dim)

            def forward(self, x):
                return self.bn(self.fc(x).flatten(1)).relu()
        """,
        id="linear-through-shape-op-aliased-bn",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Generator(nn.Module):
            def __init__(self, nz=100, ngf=64):
                super().__init__()
                layers = []
                layers.append(nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0))  # expect: BN304
                layers.append(nn.BatchNorm2d(ngf * 8))
                layers.append(nn.ReLU(True))
                self.main = nn.Sequential(*layers)

            def forward(self, z):
                return self.main(z)
        """,
        id="dcgan-layers-list-star-sequential",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.relu = nn.ReLU(inplace=True)
                self.bn = nn.BatchNorm2d(128)
                self.conv = nn.Conv2d(64, 128, 3, padding=1)  # expect: BN304

            def forward(self, x):
                x = self.conv(x)
                x = self.bn(x)
                return self.relu(x)
        """,
        id="declaration-order-irrelevant-forward-decides",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class DownBlock(nn.Sequential):
            def __init__(self, cin, cout):
                super().__init__()
                self.add_module("conv", nn.Conv2d(cin, cout, 3, stride=2, padding=1))  # expect: BN304
                self.add_module("norm", nn.BatchNorm2d(cout))
                self.add_module("act", nn.LeakyReLU(0.2))
        """,
        id="sequential-subclass-add-module",
    ),
    pytest.param(
        """
        import tensorflow as tf

        inputs = tf.keras.Input(shape=(224, 224, 3))
        x = tf.keras.layers.Conv2D(32, 3, strides=2, padding="same")(inputs)  # expect: BN304
        x = tf.keras.layers.BatchNormalization()(x)
        x = tf.keras.layers.Activation("relu")(x)
        """,
        id="keras-functional-default-use-bias",
    ),
    pytest.param(
        """
        from keras import layers, models

        model = models.Sequential()
        model.add(layers.Flatten())
        model.add(layers.Dense(256, use_bias=True))  # expect: BN304
        model.add(layers.BatchNormalization())
        model.add(layers.Activation("relu"))
        """,
        id="keras-model-add-dense",
    ),
    pytest.param(
        """
        from tensorflow import keras
        from tensorflow.keras import layers


        class ConvBlock(keras.Model):
            def __init__(self, filters):
                super().__init__()
                self.bn = layers.BatchNormalization()
                self.conv = layers.SeparableConv2D(filters, 3, padding="same")  # expect: BN304

            def call(self, inputs, training=False):
                x = self.conv(inputs)
                x = self.bn(x, training=training)
                return keras.activations.relu(x)
        """,
        id="keras-subclassed-separable-conv",
    ),
    pytest.param(
        """
        from functools import partial

        import torch.nn as nn

        norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)


        class Stem(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 24, 3, 2, 1)  # expect: BN304
                self.bn = norm_layer(24)

            def forward(self, x):
                return self.bn(self.conv(x)).relu()
        """,
        id="partial-norm-layer",
    ),
    pytest.param(
        """
        from keras import layers


        def stack(x, filters):
            x = layers.Conv2D(filters, 1, activation="linear")(x)  # expect: BN304
            x = layers.BatchNormalization(axis=3, epsilon=1.001e-5)(x)
            return layers.Activation("relu")(x)
        """,
        id="keras-linear-activation-is-no-activation",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def make_vgg_features(cfg):
            layers = []
            in_channels = 3
            for v in cfg:
                if v == "M":
                    layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
                else:
                    conv = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)  # expect: BN304
                    layers += [conv, nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                    in_channels = v
            return nn.Sequential(*layers)
        """,
        id="vgg-style-list-built-in-a-loop",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Decoder(nn.Module):
            def __init__(self, latent, channels):
                super().__init__()
                self.project = nn.Linear(latent, channels)  # expect: BN304
                self.norm = nn.BatchNorm2d(channels)

            def forward(self, z):
                # One feature per channel: the 1x1 view keeps each bias inside its own channel.
                return self.norm(self.project(z).view(-1, self.project.out_features, 1, 1))
        """,
        id="linear-viewed-as-1x1-map-same-channel-count",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Head(nn.Module):
            def __init__(self, flat_features):
                super().__init__()
                self.conv = nn.Conv2d(64, 8, 1)  # expect: BN304
                self.bn = nn.BatchNorm1d(flat_features)

            def forward(self, x):
                y = self.conv(x)
                return self.bn(y.reshape(y.size(0), -1))  # rows of (channel, position): one bias each
        """,
        id="conv-reshaped-into-rows-for-bn1d",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def make_layers(cfg, batch_norm=False):
            layers = []
            in_channels = 3
            for v in cfg:
                if v == "M":
                    layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
                else:
                    conv2d = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)  # expect: BN304
                    if batch_norm:
                        layers += [conv2d, nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                    else:
                        layers += [conv2d, nn.ReLU(inplace=True)]
                    in_channels = v
            return nn.Sequential(*layers)
        """,
        id="torchvision-vgg-bn-only-in-one-branch",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def conv_block(cin, cout, use_bn=True):
            layers = [nn.Conv2d(cin, cout, 3, padding=1)]  # expect: BN304
            if use_bn:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU())
            return nn.Sequential(*layers)
        """,
        id="bn-appended-only-when-enabled",
    ),
    pytest.param(
        """
        from tensorflow import keras


        def build(use_bn: bool) -> keras.Sequential:
            model = keras.Sequential()
            model.add(keras.layers.Dense(64))  # expect: BN304
            if use_bn:
                model.add(keras.layers.BatchNormalization())
            model.add(keras.layers.ReLU())
            return model
        """,
        id="keras-bn-added-only-when-enabled",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def down(cin, cout, normalize=True):
            layers = [nn.Conv2d(cin, cout, 4, 2, 1)] + ([nn.BatchNorm2d(cout)] if normalize else [])  # expect: BN304
            return nn.Sequential(*layers, nn.LeakyReLU(0.2))
        """,
        id="bn-in-a-conditional-list-expression",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Discriminator(nn.Module):
            def __init__(self):
                super().__init__()

                def block(cin, cout, first_block=False):
                    layers = []
                    layers.append(nn.Conv2d(cin, cout, 3, padding=1))  # expect: BN304
                    if not first_block:
                        layers.append(nn.BatchNorm2d(cout))
                    layers.append(nn.LeakyReLU(0.2))
                    return layers

                self.model = nn.Sequential(*block(3, 64, first_block=True), *block(64, 128))

            def forward(self, x):
                return self.model(x)
        """,
        id="esrgan-negated-condition-nested-helper",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def head(cin, cout, use_bn=True):
            layers = [nn.Linear(cin, cout)]  # expect: BN304
            if use_bn:
                layers.append(nn.BatchNorm1d(cout))
            else:
                layers.append(nn.Dropout(0.1))
            layers.append(nn.ReLU())
            for _ in range(2):
                layers.append(nn.Identity())
            return nn.Sequential(*layers)
        """,
        id="dropout-in-the-else-branch",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class ConvBNAct(nn.Sequential):
            def __init__(self, cin, cout, with_bn=True):
                super().__init__()
                self.add_module("conv", nn.Conv2d(cin, cout, 3, padding=1))  # expect: BN304
                if with_bn:
                    self.add_module("bn", nn.BatchNorm2d(cout))
                self.add_module("act", nn.ReLU())
        """,
        id="add-module-bn-under-a-condition",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def conv_layer(cin, cout, **kwargs):
            return nn.Conv2d(cin, cout, 3, **kwargs)  # expect: BN304


        class Stem(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(conv_layer(3, 16, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                          conv_layer(16, 32, stride=2), nn.BatchNorm2d(32))

            def forward(self, x):
                return self.body(x)
        """,
        id="kwargs-wrapper-no-call-passes-bias",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        import torch.nn as nn

        block = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        head = nn.Sequential(nn.Linear(512, 256, False), nn.BatchNorm1d(256))
        """,
        id="bias-false-keyword-and-positional",
    ),
    pytest.param(
        """
        import torch.nn as nn

        block = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(64))
        """,
        id="conv-activation-bn",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class PreActBlock(nn.Module):
            def __init__(self, planes):
                super().__init__()
                self.conv = nn.Conv2d(planes, planes, 3, padding=1)
                self.bn = nn.BatchNorm2d(planes)

            def forward(self, x):
                out = self.conv(x)
                return self.bn(out + x)
        """,
        id="residual-add-before-bn",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def conv3x3(in_planes, out_planes):
            return nn.Conv2d(in_planes, out_planes, kernel_size=3, padding=1)


        class Block(nn.Module):
            def __init__(self, planes):
                super().__init__()
                self.conv1 = conv3x3(planes, planes)
                self.bn1 = nn.BatchNorm2d(planes)
                self.conv2 = conv3x3(planes, planes)
                self.relu = nn.ReLU()

            def forward(self, x):
                x = self.bn1(self.conv1(x))
                return self.relu(self.conv2(x))
        """,
        id="helper-conv-once-before-bn-once-before-relu",
    ),
    pytest.param(
        """
        import torch.nn as nn
        from torch.nn.utils import weight_norm


        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = weight_norm(nn.Conv1d(80, 256, 5, padding=2))
                self.bn = nn.BatchNorm1d(256)

            def forward(self, x):
                return self.bn(self.conv(x))
        """,
        id="conv-passed-to-unknown-function",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Embedder(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(512, 128)
                self.bn = nn.BatchNorm1d(128)

            def forward(self, x):
                embedding = self.fc(x)
                return self.bn(embedding), embedding
        """,
        id="output-also-returned",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(64, 64, 3, padding=1)
                self.bn = nn.BatchNorm2d(64)

            def forward(self, x):
                return self.conv(self.bn(x).relu())
        """,
        id="declaration-order-trap-bn-runs-first",
    ),
    pytest.param(
        """
        from tensorflow import keras
        from tensorflow.keras import layers

        inputs = keras.Input(shape=(32, 32, 3))
        x = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
        x = layers.BatchNormalization()(x)
        x = layers.Dense(10, use_bias=False)(layers.Flatten()(x))
        x = layers.BatchNormalization()(x)
        """,
        id="keras-fused-activation-and-use-bias-false",
    ),
    pytest.param(
        """
        from tensorflow.keras import layers


        def residual_block(x, filters):
            y = layers.Conv2D(filters, 3, padding="same")(x)
            z = layers.BatchNormalization()(y)
            z = layers.Add()([z, y])
            return layers.Activation("relu")(z)
        """,
        id="keras-output-also-added",
    ),
    pytest.param(
        """
        import torch.nn as nn

        head = nn.Sequential(nn.Linear(512, 256), nn.Dropout(0.2), nn.BatchNorm1d(256))  # expect: BN305
        """,
        id="dropout-between-breaks-relation",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class ConvBlock(nn.Module):
            def __init__(self, channels, use_bn=True):
                super().__init__()
                self.conv = nn.Conv2d(channels, channels, 3, padding=1)
                self.bn = nn.BatchNorm2d(channels)
                self.use_bn = use_bn
                self.act = nn.ReLU()

            def forward(self, x):
                x = self.conv(x)
                if self.use_bn:
                    x = self.bn(x)
                return self.act(x)
        """,
        id="conditional-bn-keeps-the-bias-needed",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class SequenceHead(nn.Module):
            def __init__(self, seq_len=32, features=64):
                super().__init__()
                self.fc = nn.Linear(128, features)
                # BatchNorm1d over dim 1 of (N, seq_len, features): the positions, not the features.
                self.bn = nn.BatchNorm1d(seq_len)  # expect: BN302

            def forward(self, x):
                return self.bn(self.fc(x))
        """,
        id="bn-over-another-axis-does-not-cancel-the-bias",
    ),
    pytest.param(
        """
        from tensorflow import keras

        model = keras.Sequential([
            keras.layers.Conv2D(32, 3, data_format="channels_first"),
            keras.layers.BatchNormalization(),  # expect: BN302
        ])
        """,
        id="keras-bn-on-the-width-axis-does-not-cancel-the-bias",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Generator(nn.Module):
            def __init__(self, latent_dim, img_size):
                super().__init__()
                self.init_size = img_size // 4
                self.l1 = nn.Sequential(nn.Linear(latent_dim, 128 * self.init_size ** 2))
                self.conv_blocks = nn.Sequential(nn.BatchNorm2d(128), nn.Upsample(scale_factor=2),
                                                 nn.Conv2d(128, 3, 3, padding=1), nn.Tanh())

            def forward(self, z):
                out = self.l1(z)
                out = out.view(out.shape[0], 128, self.init_size, self.init_size)
                return self.conv_blocks(out)
        """,
        id="gan-linear-spread-over-channels-and-positions",
    ),
    pytest.param(
        """
        import torch.nn as nn

        SIZE = 7


        class Decoder(nn.Module):
            def __init__(self, latent):
                super().__init__()
                self.fc = nn.Linear(latent, 64 * SIZE * SIZE)
                self.bn = nn.BatchNorm2d(64)

            def forward(self, z):
                return self.bn(self.fc(z).reshape(-1, 64, SIZE, SIZE))
        """,
        id="linear-reshaped-into-a-map-counts-known",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Linear(128, 32)
                self.bn = nn.BatchNorm1d(32)

            def forward(self, x):
                emb = self.embed(x)
                self.last_embedding = emb  # read by a hook / the loss
                return self.bn(emb)
        """,
        id="output-kept-on-self",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Linear(128, 32)
                self.bn = nn.BatchNorm1d(32)

            def forward(self, x):
                emb = self.embed(x)
                out = self.bn(emb)
                return {"logits": out, "features": [emb]}
        """,
        id="output-returned-inside-a-dict-and-list",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def conv_layer(cin, cout, **kwargs):
            return nn.Conv2d(cin, cout, 3, **kwargs)


        class Stem(nn.Module):
            def __init__(self, options):
                super().__init__()
                self.body = nn.Sequential(conv_layer(3, 16, **options), nn.BatchNorm2d(16), nn.ReLU())

            def forward(self, x):
                return self.body(x)
        """,
        id="kwargs-wrapper-called-with-unknown-options",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_bias_at_producer_constructor(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)


CONDITIONAL_FIXES = [
    pytest.param(
        """
        import torch.nn as nn


        def block(cin, cout, normalize=True):
            layers = [nn.Linear(cin, cout)]
            if normalize:
                layers.append(nn.BatchNorm1d(cout))
            return layers


        model = nn.Sequential(*block(8, 16, normalize=False), *block(16, 32), nn.ReLU())
        """,
        "nn.Linear(cin, cout, bias=not normalize)",
        id="append-under-if",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def block(cin, cout, first=False):
            return [nn.Conv2d(cin, cout, 3, bias=True)] + ([] if first else [nn.BatchNorm2d(cout)])


        features = nn.Sequential(*block(3, 16, first=True), nn.ReLU(), *block(16, 32), nn.ReLU())
        """,
        "nn.Conv2d(cin, cout, 3, bias=first)",
        id="bn-on-the-else-side-explicit-bias",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def block(cin, cout, first_block=False):
            layers = []
            layers.append(nn.Conv2d(cin, cout, 3, padding=1))
            if not first_block:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2))
            return layers


        layers = []
        cin = 3
        for index, cout in enumerate([64, 128, 256]):
            layers.extend(block(cin, cout, first_block=(index == 0)))
            cin = cout
        critic = nn.Sequential(*layers)
        """,
        "nn.Conv2d(cin, cout, 3, padding=1, bias=first_block)",
        id="helper-list-extended-in-a-loop",
    ),
]


@pytest.mark.parametrize(("before", "fixed_call"), CONDITIONAL_FIXES)
def test_conditional_fix_is_the_condition_itself(before: str, fixed_call: str) -> None:
    before = dedent(before)
    fixed = fix_source(before, unsafe=True)
    assert fixed_call in fixed
    assert fix_source(fixed, unsafe=True) == fixed, "not idempotent"
    assert CODE not in {d.code for d in lint_source(fixed)}


def test_conditional_bn_whose_test_is_not_a_parameter_gets_no_fix() -> None:
    source = dedent("""
        import torch.nn as nn


        def stack(widths):
            layers = []
            for index, width in enumerate(widths):
                layers.append(nn.Linear(width, width))
                if index < len(widths) - 1:
                    layers.append(nn.BatchNorm1d(width))
            return nn.Sequential(*layers)
        """)
    (finding,) = [d for d in lint_source(source) if d.code == CODE]
    assert finding.fix is None and "index < len(widths) - 1" in finding.message
