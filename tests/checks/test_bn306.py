"""BN306 momentum-convention: torch momentum > 0.5 or keras momentum < 0.5, reported at
the `momentum=` argument (or the positional argument that binds it)."""

from __future__ import annotations

import pytest

from bnlint.engine import lint_source

from .conftest import assert_matches_markers, lint_package, package_markers

CODE = "BN306"

POSITIVE = [
    pytest.param(
        """
        import torch.nn as nn

        bn = nn.BatchNorm2d(64, momentum=0.9)  # expect: BN306
        """,
        id="torch-keyword",
    ),
    pytest.param(
        """
        from torch.nn import BatchNorm2d as BN


        def norm(channels):
            return BN(channels, 1e-3, 0.99)  # expect: BN306
        """,
        id="torch-third-positional-aliased",
    ),
    pytest.param(
        """
        from functools import partial

        import torch.nn as nn

        norm_layer = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.99)  # expect: BN306


        class MBConv(nn.Module):
            def __init__(self, cin, cout):
                super().__init__()
                self.conv = nn.Conv2d(cin, cout, 1, bias=False)
                self.bn = norm_layer(cout)

            def forward(self, x):
                return self.bn(self.conv(x))
        """,
        id="torchvision-maxvit-partial",
    ),
    pytest.param(
        """
        import torch.nn as nn

        BN_MOMENTUM = 0.9


        class HighResolutionModule(nn.Module):
            def __init__(self, channels):
                super().__init__()
                self.bn = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)  # expect: BN306
        """,
        id="module-constant",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Bottleneck(nn.Module):
            def __init__(self, planes, bn_momentum=0.99):
                super().__init__()
                self.bn = nn.BatchNorm2d(
                    planes,
                    eps=1e-3,
                    momentum=bn_momentum,  # expect: BN306
                )
        """,
        id="parameter-default-multiline-call",
    ),
    pytest.param(
        """
        import torch
        import torch.nn.functional as F


        def normalize(x, running_mean, running_var):
            return F.batch_norm(x, running_mean, running_var, training=True, momentum=0.9)  # expect: BN306
        """,
        id="functional-batch-norm",
    ),
    pytest.param(
        """
        import torch.nn as nn

        layer = nn.SyncBatchNorm(256, momentum=0.997)  # expect: BN306
        """,
        id="torch-sync-batchnorm",
    ),
    pytest.param(
        """
        from tensorflow.keras import layers

        inputs = layers.Input(shape=(32, 32, 3))
        x = layers.Conv2D(32, 3, use_bias=False)(inputs)
        x = layers.BatchNormalization(momentum=0.1)(x)  # expect: BN306
        """,
        id="keras-keyword",
    ),
    pytest.param(
        """
        from keras import layers

        bn = layers.BatchNormalization(-1, 0.01)  # expect: BN306
        """,
        id="keras-second-positional",
    ),
    pytest.param(
        """
        import tensorflow as tf


        def conv_block(x, filters, bn_momentum=0.1):
            x = tf.keras.layers.Conv2D(filters, 3, use_bias=False)(x)
            x = tf.keras.layers.BatchNormalization(momentum=bn_momentum)(x)  # expect: BN306
            return tf.keras.layers.ReLU()(x)
        """,
        id="keras-parameter-default",
    ),
    pytest.param(
        """
        import tensorflow as tf


        def bn_relu(x, training):
            x = tf.compat.v1.layers.batch_normalization(x, momentum=0.1, training=training)  # expect: BN306
            return tf.nn.relu(x)
        """,
        id="tf1-functional-batch-normalization",
    ),
    pytest.param(
        """
        from torch import nn
        from torch.nn.modules.batchnorm import _BatchNorm


        def port_tf_hyperparameters(model: nn.Module) -> None:
            for module in model.modules():
                if isinstance(module, _BatchNorm):
                    module.eps = 1e-3
                    module.momentum = 0.99  # expect: BN306
        """,
        id="attribute-set-on-modules-narrowed-by-isinstance",
    ),
    pytest.param(
        """
        import tensorflow as tf


        def set_bn_momentum(model):
            for layer in model.layers:
                if isinstance(layer, tf.keras.layers.BatchNormalization):
                    layer.momentum = 0.1  # expect: BN306
        """,
        id="keras-attribute-set-on-layers-narrowed-by-isinstance",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        import torch.nn as nn

        a = nn.BatchNorm2d(64, momentum=0.1)
        b = nn.BatchNorm2d(64, momentum=None)
        c = nn.BatchNorm1d(64, momentum=0.5)
        d = nn.BatchNorm2d(64, momentum=1.0)
        """,
        id="torch-convention-none-boundary-and-one",
    ),
    pytest.param(
        """
        import torch.nn as nn

        bn = nn.BatchNorm2d(64, 0.9)  # expect: BN307 (eps, not momentum: BN306 stays silent)
        """,
        id="torch-second-positional-is-eps",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn

        model = nn.Sequential(nn.Conv2d(3, 16, 3, bias=False), nn.BatchNorm2d(16))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        """,
        id="optimizer-momentum",
    ),
    pytest.param(
        """
        import torch.nn as nn

        BATCH_NORM_DECAY = 0.99
        bn = nn.BatchNorm2d(32, momentum=1 - BATCH_NORM_DECAY)
        """,
        id="torch-converted-from-keras-decay",
    ),
    pytest.param(
        """
        from functools import partial

        import torch.nn as nn

        norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        """,
        id="torch-partial-convention",
    ),
    pytest.param(
        """
        from tensorflow import keras

        a = keras.layers.BatchNormalization(momentum=0.99)
        b = keras.layers.BatchNormalization(momentum=0.0)
        c = keras.layers.BatchNormalization(momentum=0.5)
        d = keras.layers.BatchNormalization()
        """,
        id="keras-convention-zero-boundary-default",
    ),
    pytest.param(
        """
        from keras import layers

        bn = layers.BatchNormalization(1, 0.9, 1e-5)
        """,
        id="keras-positional-convention",
    ),
    pytest.param(
        """
        import torch.nn as nn


        def initialize(model):
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.momentum = 0.03  # the yolov5 value: PyTorch convention
                elif isinstance(m, nn.Conv2d):
                    m.momentum = 0.97  # not a batch norm
        """,
        id="attribute-in-torch-convention-or-on-another-layer",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_at_momentum_argument(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)


def test_anchor_is_the_momentum_argument_not_the_call() -> None:
    (finding,) = lint_source("import torch.nn as nn\nbn = nn.BatchNorm2d(64, eps=1e-5, momentum=0.9)\n")
    assert (finding.code, finding.line, finding.column) == (CODE, 2, len("bn = nn.BatchNorm2d(64, eps=1e-5, ") + 1)


CONFIG_PROJECTS = [
    pytest.param(
        {
            "configuration": """
                from dataclasses import dataclass


                @dataclass
                class BackboneConfig:
                    num_channels: int = 3
                    hidden_dim: int = 1280
                    batch_norm_eps: float = 1e-3
                    batch_norm_momentum: float = 0.99
                """,
            "modeling": """
                from torch import nn

                from .configuration import BackboneConfig


                class Stem(nn.Module):
                    def __init__(self, config: BackboneConfig):
                        super().__init__()
                        self.conv = nn.Conv2d(config.num_channels, 32, 3, bias=False)
                        self.bn = nn.BatchNorm2d(32, eps=config.batch_norm_eps, momentum=config.batch_norm_momentum)  # expect: BN306

                    def forward(self, x):
                        return self.bn(self.conv(x))
                """,
        },
        id="dataclass-config-in-another-file",
    ),
    pytest.param(
        {
            "settings": """
                class Options:
                    def __init__(self, width=64, bn_momentum=0.9, **kwargs):
                        self.width = width
                        self.bn_momentum = bn_momentum
                """,
            "blocks": """
                import torch.nn as nn

                from .settings import Options


                def norm(opts: Options, channels: int) -> nn.BatchNorm1d:
                    return nn.BatchNorm1d(channels, momentum=opts.bn_momentum)  # expect: BN306
                """,
        },
        id="init-defaults-of-a-config-class",
    ),
    pytest.param(
        {
            "configuration": """
                from dataclasses import dataclass


                @dataclass
                class EncoderConfig:
                    hidden_size: int = 256
                    batch_norm_momentum: float = 0.01
                """,
            "modeling": """
                from torch import nn

                from .configuration import EncoderConfig


                class Encoder(nn.Module):
                    def __init__(self, config: EncoderConfig):
                        super().__init__()
                        self.norm = nn.BatchNorm1d(config.hidden_size, momentum=config.batch_norm_momentum)

                    def forward(self, x):
                        return self.norm(x)
                """,
        },
        id="near-miss-config-default-in-pytorch-convention",
    ),
    pytest.param(
        {
            "blocks": """
                import torch.nn as nn


                class Block(nn.Module):
                    momentum = 0.9

                    def __init__(self, channels: int) -> None:
                        super().__init__()
                        self.bn = nn.BatchNorm2d(channels)

                    def forward(self, x):
                        return self.bn(x)


                def retune(block: Block) -> nn.BatchNorm2d:
                    return nn.BatchNorm2d(8, momentum=block.momentum)
                """,
        },
        id="near-miss-annotation-is-a-model-class",
    ),
]


@pytest.mark.parametrize("modules", CONFIG_PROJECTS)
def test_momentum_from_a_configuration_class_default(tmp_path, modules: dict[str, str]) -> None:
    assert lint_package(tmp_path, modules, {CODE}) == package_markers(modules)
