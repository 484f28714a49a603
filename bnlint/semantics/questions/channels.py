"""Questions rules ask of the model, answered once here so rules stay a few lines."""

from __future__ import annotations

from bnlint.semantics.catalogue.layers import Kind
from bnlint.semantics.interp.values import UNKNOWN, Const, Count, Layer, Op, Param, Tensor, Value, as_count, as_number

_MAX_TRACE = 16


def channel_source(tensor: Tensor) -> Layer | None:
    """The nearest layer that fixes the tensor's channel count (a conv, linear or BN),
    tracing back through layers that keep channels (activations, pooling, dropout) as long
    as no shape-only op intervenes (a flatten or view changes what "channels" means)."""
    for _ in range(_MAX_TRACE):
        producer = tensor.producer
        if tensor.via or not isinstance(producer, Layer):
            return None
        spec = producer.spec
        if spec.out_channels or spec.num_features:
            return producer
        if not spec.keeps_channels or len(producer.inputs) != 1:
            return None
        tensor = producer.inputs[0]
    return None


def tensor_channels(tensor: Tensor) -> tuple[Count, str] | None:
    """The channel count of a tensor and what fixed it (a layer class or an op), traced back
    like `channel_source`, also through ops that fix it themselves
    (`torch.cat([a, b], dim=1)` has the channels of a and b)."""
    for _ in range(_MAX_TRACE):
        if tensor.via:
            return None
        if tensor.channels is not None:
            producer = tensor.producer
            return tensor.channels, producer.name if isinstance(producer, Op) else "its input"
        producer = tensor.producer
        if not isinstance(producer, Layer) or has_unknown_arguments(producer):
            return None
        parameter = producer.spec.out_channels or producer.spec.num_features
        if parameter:
            count = as_count(producer.arg(parameter))
            return (count, producer.spec.name) if count is not None else None
        if not producer.spec.keeps_channels or len(producer.inputs) != 1:
            return None
        tensor = producer.inputs[0]
    return None


def has_unknown_arguments(layer: Layer) -> bool:
    """`Conv2d(*args, **kwargs)`: any argument may be anything."""
    return "*" in layer.args


def truth(value: Value) -> bool | None:
    """A literal boolean (following a parameter to its default), else None."""
    if isinstance(value, Param) and value.default is not None:
        value = value.default
    if isinstance(value, Const) and isinstance(value.value, bool):
        return value.value
    return None


def bias_enabled(layer: Layer) -> bool | None:
    """Whether the layer adds a bias, when the code says so (explicitly or by default)."""
    if layer.spec.bias is None or has_unknown_arguments(layer):
        return None
    return truth(layer.arg(layer.spec.bias))


def fused_activation(layer: Layer) -> bool:
    """Keras layers can apply an activation themselves (`Conv2D(..., activation="relu")`)."""
    if layer.spec.activation is None:
        return False
    value = layer.arg(layer.spec.activation)
    return not (isinstance(value, Const) and value.value in (None, "linear"))


def is_batch_norm(value: object) -> bool:
    return isinstance(value, Layer) and value.spec.kind is Kind.BATCH_NORM


def feature_counts(bn: Layer, producer: Layer) -> tuple[Count, Count] | None:
    """A PyTorch BN's `num_features` and the channel count its producer gives, when both are
    known (linear forms over parameters: compare them with `Count.differs_from`)."""
    if not bn.spec.num_features or has_unknown_arguments(bn) or has_unknown_arguments(producer):
        return None
    expected = as_count(bn.arg(bn.spec.num_features))
    parameter = producer.spec.out_channels or producer.spec.num_features
    channels = as_count(producer.arg(parameter)) if parameter else None
    return (expected, channels) if expected is not None and channels is not None else None


# Shape ops that may split an axis into several (a Linear's features into channels and
# positions), unlike flatten, which only merges, and permute, which only moves axes.
_RESHAPES = frozenset({"view", "reshape", "view_as", "reshape_as", "unflatten", "Unflatten", "Reshape"})


def spreads_features(bn: Layer, producer: Layer, via: tuple[str, ...]) -> bool:
    """A reshape between the producer and the BN may spread each of the producer's output
    features over several positions of one BN channel (`Linear(z, 128*s*s)` →
    `view(N, 128, s, s)` → `BatchNorm2d(128)`): the bias then differs inside a channel, and
    BN, which removes only each channel's mean, does not cancel it. Not so where the BN
    has exactly the producer's channel count, or where the reshape can only have merged
    axes (a convolution's output viewed as rows for a BatchNorm1d)."""
    if not any(op in _RESHAPES for op in via):
        return False
    counts = feature_counts(bn, producer)
    if counts is not None:
        difference = counts[0] - counts[1]
        if not difference.terms and not difference.const:
            return False
    merged = producer.spec.kind is Kind.CONV and bn.spec.bn_ranks and producer.spec.rank is not None
    return not (merged and max(bn.spec.bn_ranks) < (producer.spec.rank or 0))


def keras_channel_axes(bn: Layer, producer: Layer, rank: int | None) -> tuple[int, set[int], bool] | None:
    """A Keras BN's `axis`, the axes that hold the channels of a convolution's output, and
    whether that output is channels_first. None when any of it is unknown."""
    axis = as_number(bn.arg("axis"))
    if axis is None or producer.spec.kind is not Kind.CONV or not producer.spec.rank:
        return None
    data_format = producer.arg("data_format")
    if data_format is UNKNOWN:  # not written: Keras' default image_data_format, channels_last
        data_format = Const(None)
    if not isinstance(data_format, Const) or data_format.value not in (None, "channels_last", "channels_first"):
        return None
    rank = rank or producer.spec.rank
    channels_first = data_format.value == "channels_first" and rank > 2
    return int(axis), ({1, 1 - rank} if channels_first else {-1, rank - 1}), channels_first


def normalizes_other_axis(bn: Layer, producer: Layer, tensor: Tensor) -> bool:
    """The BN provably normalizes another axis than the producer's channels (so it neither
    fits nor cancels the producer's per-channel bias)."""
    counts = feature_counts(bn, producer)
    if counts is not None:
        expected, channels = counts
        return expected.differs_from(channels) or expected.disagrees_under_defaults(channels) is not None
    axes = keras_channel_axes(bn, producer, tensor.rank) if not tensor.via else None
    return axes is not None and axes[0] not in axes[1]
