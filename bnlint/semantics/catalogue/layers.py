"""The layer catalogue: what bnlint knows about each framework layer, as data.

One entry per layer class (or functional op that takes BN arguments). Rules never look at
class names; they ask this catalogue what a layer *is*: which argument gives its output
channels, its input rank, whether it carries a bias by default, whether it keeps channels.
`tests/test_layer_catalogue.py` checks the parameter orders and defaults here against the
real torch and keras signatures when those are installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Framework(str, Enum):
    TORCH = "torch"
    KERAS = "keras"


# The packages each framework's code is imported from (Keras also through TensorFlow).
KERAS_ROOTS = frozenset({"keras", "tensorflow", "tf_keras"})
FRAMEWORK_ROOTS = frozenset({"torch", *KERAS_ROOTS})


class Kind(str, Enum):
    CONV = "conv"  # includes transposed, separable and depthwise convolutions
    LINEAR = "linear"  # nn.Linear, keras Dense
    BATCH_NORM = "batch_norm"
    NORM = "norm"  # other normalisations: keep channels
    DROPOUT = "dropout"
    ACTIVATION = "activation"
    POOL = "pool"
    GLOBAL_POOL = "global_pool"  # keeps channels, drops the spatial axes
    IDENTITY = "identity"
    RESHAPE = "reshape"  # flatten / reshape / permute: shape-only
    PADDING = "padding"
    CONTAINER = "container"  # nn.Sequential, keras Sequential


@dataclass(frozen=True)
class LayerSpec:
    name: str
    framework: Framework
    kind: Kind
    # Leading positional parameters in order (enough to bind the arguments that matter).
    params: tuple[str, ...]
    # Defaults bnlint relies on, by parameter name.
    defaults: dict[str, object] = field(default_factory=dict)
    out_channels: str | None = None  # parameter giving the number of output channels
    num_features: str | None = None  # BN: parameter giving the expected channels
    rank: int | None = None  # input = output rank incl. the batch axis (Conv2d: 4)
    bn_ranks: tuple[int, ...] = ()  # BN: input ranks it accepts
    bias: str | None = None  # parameter switching the additive bias on or off
    activation: str | None = None  # keras: a fused activation parameter
    functional: bool = False  # a function (F.batch_norm), not a layer class
    module: str | None = None  # where it lives when not in torch.nn / keras.layers themselves

    @property
    def keeps_channels(self) -> bool:
        return self.kind in _CHANNEL_PRESERVING

    @property
    def keeps_rank(self) -> bool:
        return self.kind in _RANK_PRESERVING


_CHANNEL_PRESERVING = {Kind.NORM, Kind.DROPOUT, Kind.ACTIVATION, Kind.POOL, Kind.GLOBAL_POOL, Kind.IDENTITY, Kind.PADDING}
_RANK_PRESERVING = {Kind.NORM, Kind.DROPOUT, Kind.ACTIVATION, Kind.POOL, Kind.IDENTITY, Kind.PADDING}

T, K = Framework.TORCH, Framework.KERAS


def _torch_convs() -> list[LayerSpec]:
    specs = []
    for dims in (1, 2, 3):
        rank = dims + 2
        conv = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")
        conv_t = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "groups", "bias")
        common = dict(framework=T, kind=Kind.CONV, out_channels="out_channels", rank=rank, bias="bias", defaults={"bias": True})
        specs += [
            LayerSpec(f"Conv{dims}d", params=conv, **common),
            LayerSpec(f"ConvTranspose{dims}d", params=conv_t, **common),
            LayerSpec(f"LazyConv{dims}d", params=conv[1:], **common),
            LayerSpec(f"LazyConvTranspose{dims}d", params=conv_t[1:], **common),
        ]
    return specs


def _torch_norms() -> list[LayerSpec]:
    bn = ("num_features", "eps", "momentum", "affine", "track_running_stats")
    defaults = {"eps": 1e-5, "momentum": 0.1}
    specs = [
        LayerSpec(f"BatchNorm{dims}d", T, Kind.BATCH_NORM, bn, defaults, num_features="num_features", bn_ranks=ranks)
        for dims, ranks in ((1, (2, 3)), (2, (4,)), (3, (5,)))
    ]
    specs += [
        LayerSpec(f"LazyBatchNorm{dims}d", T, Kind.BATCH_NORM, bn[1:], defaults, bn_ranks=ranks)
        for dims, ranks in ((1, (2, 3)), (2, (4,)), (3, (5,)))
    ]
    specs.append(
        LayerSpec("SyncBatchNorm", T, Kind.BATCH_NORM, bn, defaults, num_features="num_features", bn_ranks=(2, 3, 4, 5))
    )
    # The base class of every BatchNorm: met in `isinstance(m, _BatchNorm)` tests.
    specs.append(LayerSpec("_BatchNorm", T, Kind.BATCH_NORM, bn, defaults, num_features="num_features",
                           bn_ranks=(2, 3, 4, 5), module="torch.nn.modules.batchnorm"))
    specs.append(
        LayerSpec(
            "batch_norm",
            T,
            Kind.BATCH_NORM,
            ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
            {"momentum": 0.1},
            functional=True,
        )
    )
    other = ["GroupNorm", "LayerNorm", "LocalResponseNorm", "RMSNorm", "CrossMapLRN2d"]
    other += [f"{prefix}InstanceNorm{dims}d" for prefix in ("", "Lazy") for dims in (1, 2, 3)]
    specs += [LayerSpec(name, T, Kind.NORM, ()) for name in other]
    return specs


def _torch_others() -> list[LayerSpec]:
    specs = [
        LayerSpec("Linear", T, Kind.LINEAR, ("in_features", "out_features", "bias"), {"bias": True},
                  out_channels="out_features", rank=2, bias="bias"),
        LayerSpec("LazyLinear", T, Kind.LINEAR, ("out_features", "bias"), {"bias": True},
                  out_channels="out_features", rank=2, bias="bias"),
        LayerSpec("Bilinear", T, Kind.LINEAR, ("in1_features", "in2_features", "out_features", "bias"), {"bias": True},
                  out_channels="out_features", rank=2, bias="bias"),
        LayerSpec("Identity", T, Kind.IDENTITY, ()),
        LayerSpec("Flatten", T, Kind.RESHAPE, ("start_dim", "end_dim"), {"start_dim": 1, "end_dim": -1}),
        LayerSpec("Unflatten", T, Kind.RESHAPE, ()),
        LayerSpec("Sequential", T, Kind.CONTAINER, ()),
    ]
    dropouts = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]
    specs += [LayerSpec(name, T, Kind.DROPOUT, ("p", "inplace"), {"p": 0.5}) for name in dropouts]
    activations = [
        "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid",
        "Tanh", "Hardswish", "Hardsigmoid", "Hardtanh", "Softplus", "Softsign", "Softmax", "Softmax2d", "LogSoftmax",
        "LogSigmoid", "Threshold", "Tanhshrink", "Softshrink", "Hardshrink",
    ]  # not GLU: it halves its dimension, so channel counts do not pass through it
    specs += [LayerSpec(name, T, Kind.ACTIVATION, ()) for name in activations]
    pools = [f"{kind}{dims}d" for kind in ("MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "LPPool")
             for dims in (1, 2, 3)]
    pools += ["FractionalMaxPool2d", "FractionalMaxPool3d"]
    specs += [LayerSpec(name, T, Kind.POOL, ()) for name in pools]
    pads = [f"{kind}Pad{dims}d" for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular")
            for dims in (1, 2, 3)]
    specs += [LayerSpec(name, T, Kind.PADDING, ()) for name in pads]
    specs += [LayerSpec(name, T, Kind.POOL, ()) for name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")]
    return specs


def _keras_layers() -> list[LayerSpec]:
    conv_tail = {"bias": "use_bias", "activation": "activation", "defaults": {"use_bias": True, "activation": None}}
    specs = []
    for dims in (1, 2, 3):
        rank = dims + 2
        specs += [
            LayerSpec(f"Conv{dims}D", K, Kind.CONV, ("filters", "kernel_size", "strides", "padding", "data_format"),
                      out_channels="filters", rank=rank, **conv_tail),
            LayerSpec(f"Conv{dims}DTranspose", K, Kind.CONV, ("filters", "kernel_size", "strides", "padding"),
                      out_channels="filters", rank=rank, **conv_tail),
        ]
    for dims in (1, 2):
        specs += [
            LayerSpec(f"SeparableConv{dims}D", K, Kind.CONV,
                      ("filters", "kernel_size", "strides", "padding", "data_format"),
                      out_channels="filters", rank=dims + 2, **conv_tail),
            LayerSpec(f"DepthwiseConv{dims}D", K, Kind.CONV,
                      ("kernel_size", "strides", "padding", "depth_multiplier", "data_format"),
                      rank=dims + 2, **conv_tail),
        ]
    specs += [
        LayerSpec("Dense", K, Kind.LINEAR, ("units", "activation", "use_bias"), {"use_bias": True, "activation": None},
                  out_channels="units", bias="use_bias", activation="activation"),
        LayerSpec("BatchNormalization", K, Kind.BATCH_NORM, ("axis", "momentum", "epsilon", "center", "scale"),
                  {"axis": -1, "momentum": 0.99, "epsilon": 1e-3}),
        LayerSpec("SyncBatchNormalization", K, Kind.BATCH_NORM, ("axis", "momentum", "epsilon"),
                  {"axis": -1, "momentum": 0.99, "epsilon": 1e-3}),
        LayerSpec("batch_normalization", K, Kind.BATCH_NORM, ("inputs", "axis", "momentum", "epsilon"),
                  {"axis": -1, "momentum": 0.99}, functional=True),
        LayerSpec("Flatten", K, Kind.RESHAPE, ("data_format",)),
        LayerSpec("Reshape", K, Kind.RESHAPE, ("target_shape",)),
        LayerSpec("Permute", K, Kind.RESHAPE, ("dims",)),
        LayerSpec("Identity", K, Kind.IDENTITY, ()),
        LayerSpec("Sequential", K, Kind.CONTAINER, ("layers",)),
    ]
    norms = ["LayerNormalization", "GroupNormalization", "UnitNormalization", "RMSNormalization"]
    specs += [LayerSpec(name, K, Kind.NORM, ()) for name in norms]
    dropouts = ["Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
                "GaussianDropout"]
    specs += [LayerSpec(name, K, Kind.DROPOUT, ("rate",)) for name in dropouts]
    activations = ["Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"]
    specs += [LayerSpec(name, K, Kind.ACTIVATION, ()) for name in activations]
    for dims in (1, 2, 3):
        specs += [LayerSpec(f"{kind}{dims}D", K, Kind.POOL, ()) for kind in ("MaxPooling", "AveragePooling",
                                                                             "UpSampling", "ZeroPadding", "Cropping")]
        specs += [LayerSpec(f"Global{kind}Pooling{dims}D", K, Kind.GLOBAL_POOL, ()) for kind in ("Average", "Max")]
    return specs


CATALOGUE: dict[tuple[Framework, str], LayerSpec] = {
    (spec.framework, spec.name): spec
    for spec in _torch_convs() + _torch_norms() + _torch_others() + _keras_layers()
}



def framework_of(qualified_name: str) -> Framework | None:
    """Which framework a qualified name belongs to, by its module path."""
    parts = qualified_name.split(".")
    if parts[0] == "torch" and "nn" in parts[1:-1]:
        return Framework.TORCH
    if parts[0] in KERAS_ROOTS and "layers" in parts[1:-1]:
        return Framework.KERAS
    if parts[0] in KERAS_ROOTS and parts[-1] == "Sequential" and ("keras" in parts or parts[0] != "tensorflow"):
        return Framework.KERAS
    return None


def lookup(qualified_name: str) -> LayerSpec | None:
    """The catalogue entry for a qualified name such as `torch.nn.modules.conv.Conv2d`,
    `tensorflow.keras.layers.Conv2D` or `torch.nn.functional.batch_norm`."""
    framework = framework_of(qualified_name)
    if framework is None:
        return None
    return CATALOGUE.get((framework, qualified_name.rsplit(".", 1)[-1]))


# Tensor methods and torch functions that only move data around: a bias survives them.
SHAPE_OPS = frozenset({
    "view", "reshape", "flatten", "permute", "transpose", "contiguous", "squeeze", "unsqueeze", "view_as",
    "reshape_as", "movedim", "swapaxes", "unflatten",
})
# Ops that keep both channel count and rank (used to trace channels back through them).
CHANNEL_OPS = frozenset({
    "relu", "relu_", "relu6", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "hardswish", "elu", "selu", "mish",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool2d",
    "adaptive_max_pool2d", "interpolate", "pad",
})
DROPOUT_OPS = frozenset({
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
})
