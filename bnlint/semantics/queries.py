"""Questions rules ask of the model, answered once here so rules stay a few lines."""

from __future__ import annotations

from bnlint.semantics.layers import Kind
from bnlint.semantics.values import Const, Layer, Param, Tensor, Value

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
