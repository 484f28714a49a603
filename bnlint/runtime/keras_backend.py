"""The runtime checker's Keras side (Keras 3 on TensorFlow): each layer's `call` is wrapped
to trace the forward pass; weights are copied variable by variable, in the model's order.
Imported only in the worker process."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not the user's output

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bnlint.runtime.backend import LEARNING_RATE, Backend, Call, LayerRef, Site, Trace  # noqa: E402
from bnlint.runtime.inputs import DEFAULT_TOKENS, Batch, Inputs, InputSpec  # noqa: E402


_CELL_FEATURES = 16
_UNBUILT_INPUTS = {keras.layers.Dense: (16,), keras.layers.Conv1D: (32, 3), keras.layers.Conv2D: (32, 32, 3),
                   keras.layers.Conv3D: (16, 16, 16, 3)}  # sample shapes, channels last
_SEQUENCE_LENGTH = 16  # token ids per sample for a model that starts with an embedding


def _numpy(value: Any) -> np.ndarray | None:
    if isinstance(value, (list, tuple)):
        return next((array for array in map(_numpy, value) if array is not None), None)
    if isinstance(value, Mapping):
        return _numpy(list(value.values()))
    try:
        return np.array(keras.ops.convert_to_numpy(value), dtype=np.float64)
    except (TypeError, ValueError):  # a symbolic tensor while a model builds, or not a tensor
        return None


class KerasBackend(Backend):
    name = "keras"
    channel_axis = -1
    running_mean_name = "moving_mean"
    call_method = "call"

    def __init__(self, device: str, sites: Mapping[int, Site], seed: int) -> None:
        import tensorflow as tf

        if device == "cuda" and not tf.config.list_physical_devices("GPU"):
            raise RuntimeError("--device cuda: TensorFlow sees no GPU")
        self.device = tf.device("/GPU:0" if device == "cuda" else "/CPU:0")
        self.sites = sites
        self.seed = seed

    def prepare(self, model: Any) -> Any:
        return model

    def is_model(self, value: object) -> bool:
        return isinstance(value, keras.Model) or (isinstance(value, keras.layers.Layer)
                                                 and hasattr(value, "state_size"))  # an RNN cell

    def layers(self, model: Any) -> list[LayerRef]:
        return [LayerRef(layer.name, type(layer).__name__, self.sites.get(id(layer)), layer)
                for layer in model._flatten_layers(include_self=False, recursive=True)
                if not isinstance(layer, keras.layers.InputLayer)]

    def forward(self, model: Any, batch: Batch, training: bool | None) -> np.ndarray:
        # Dropout masks repeat from one forward pass (and one build of the model) to the next:
        # experiments compare outputs.
        for variable in model.variables:
            if "seed_generator_state" in variable.path:
                variable.assign(np.array([self.seed, 0], dtype=variable.dtype))
        arrays = batch.map(lambda x: x if np.issubdtype(x.dtype, np.integer) else x.astype("float32"))
        flag = {} if training is None else {"training": training}
        with self.device:
            output = _numpy(model(*arrays.args, **arrays.kwargs, **flag))
        if output is None:
            raise TypeError(f"{type(model).__name__} returned no tensor")
        return output

    def trace(self, model: Any, batch: Batch, training: bool) -> Trace:
        calls: list[Call] = []
        running: list[LayerRef] = []
        trace = Trace(calls, None)
        refs = self.layers(model)

        def wrapped(ref: LayerRef, original: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                record = Call(ref, _numpy(args[0] if args else next(iter(kwargs.values()), None)))
                if record.input is not None:  # symbolic calls while a model builds are not evidence
                    calls.append(record)
                running.append(ref)
                try:
                    output = original(*args, **kwargs)
                except Exception:
                    if trace.failed_in is None:  # the innermost layer sees the error first
                        trace.failed_in = ref
                    raise
                finally:
                    running.pop()
                record.output = _numpy(output)
                return output
            return call

        for ref in refs:
            object.__setattr__(ref.handle, "call", wrapped(ref, ref.handle.call))
        try:
            trace.output = self.forward(model, batch, training)
        except Exception as error:  # noqa: BLE001 - the user's call may raise anything; it is evidence
            trace.error = error
        finally:
            for ref in refs:
                object.__delattr__(ref.handle, "call")
        return trace

    def train_step(self, model: Any, batch: Batch, training: bool | None) -> None:
        import tensorflow as tf

        arrays = batch.map(lambda x: x if np.issubdtype(x.dtype, np.integer) else x.astype("float32"))
        flag = {} if training is None else {"training": training}
        with self.device, tf.GradientTape() as tape:
            output = model(*arrays.args, **arrays.kwargs, **flag)
            loss = tf.reduce_mean(tf.square(output[0] if isinstance(output, (list, tuple)) else output))
        variables = model.trainable_variables
        for variable, gradient in zip(variables, tape.gradient(loss, variables), strict=True):
            if gradient is not None:
                variable.assign_sub(LEARNING_RATE * gradient)

    def has_own_train_step(self, model: Any) -> bool:
        return isinstance(model, keras.Model) and type(model).train_step is not keras.Model.train_step

    def own_train_step(self, model: Any, batch: Batch) -> None:
        targets = np.zeros_like(self.forward(model, batch, training=False), dtype="float32")
        if not model.compiled:
            model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss="mse")
        x = batch.args[0] if len(batch.args) == 1 and not batch.kwargs else batch.args
        with self.device:
            model.train_step((x, targets))

    def is_trainable(self, layer: LayerRef) -> bool:
        return bool(layer.handle.trainable)

    def set_trainable(self, model: Any, trainable: bool) -> None:
        model.trainable = trainable

    def weight(self, layer: LayerRef) -> np.ndarray | None:
        gamma = getattr(layer.handle, "gamma", None)
        return None if gamma is None else gamma.numpy().astype(np.float64)

    def state(self, model: Any) -> list[np.ndarray]:
        return [variable.numpy().copy() for variable in model.variables]

    def load_state(self, model: Any, state: list[np.ndarray]) -> None:
        for variable, value in zip(model.variables, state, strict=True):
            variable.assign(value)

    def parameter_count(self, model: Any) -> int:
        return int(sum(np.prod(variable.shape) for variable in model.trainable_weights))

    def is_batch_norm(self, layer: LayerRef) -> bool:
        return isinstance(layer.handle, keras.layers.BatchNormalization)

    def bias(self, layer: LayerRef) -> np.ndarray | None:
        bias = getattr(layer.handle, "bias", None) if getattr(layer.handle, "use_bias", False) else None
        return None if bias is None else bias.numpy().astype(np.float64)

    def set_bias(self, layer: LayerRef, value: np.ndarray) -> None:
        layer.handle.bias.assign(value.astype("float32"))

    def running_mean(self, layer: LayerRef) -> np.ndarray:
        return layer.handle.moving_mean.numpy().astype(np.float64)

    def beta(self, layer: LayerRef) -> np.ndarray:
        norm = layer.handle
        return norm.beta.numpy().astype(np.float64) if norm.center else np.zeros(norm.moving_mean.shape)

    def fresh_copy(self, layer: LayerRef) -> Any:
        return type(layer.handle).from_config(layer.handle.get_config())

    def _variables(self, model: Any, dropped: set[int]) -> list[Any]:
        """The model's variables in order, less the biases of the layers in `dropped` (ids)."""
        biases = {id(layer.bias) for layer in model._flatten_layers() if id(layer) in dropped}
        return [variable for variable in model.weights if id(variable) not in biases]

    def copy_weights(self, source: Any, target: Any, dropped_biases: set[str]) -> None:
        dropped = {id(ref.handle) for ref in self.layers(source) if ref.path in dropped_biases}
        self._assign(target, [variable.numpy() for variable in self._variables(source, dropped)])

    def fold_biases(self, source: Any, target: Any, pairs: dict[str, str]) -> None:
        by_path = {ref.path: ref.handle for ref in self.layers(source)}
        values = {id(variable): variable.numpy() for variable in source.weights}
        for producer, norm in pairs.items():
            moving_mean = by_path[norm].moving_mean
            values[id(moving_mean)] = values[id(moving_mean)] - by_path[producer].bias.numpy()
        dropped = {id(by_path[producer]) for producer in pairs}
        self._assign(target, [values[id(variable)] for variable in self._variables(source, dropped)])

    def _assign(self, target: Any, values: list[np.ndarray]) -> None:
        variables = target.weights
        if [tuple(v.shape) for v in variables] != [tuple(np.shape(value)) for value in values]:
            raise ValueError("the fixed model's variables do not match the original's, less the dropped biases")
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)

    def channels_normalized(self, layer: LayerRef, call: Call, producer: LayerRef | None) -> tuple[int, int]:
        rank = call.input.ndim
        axis = layer.handle.axis
        axis = (axis[0] if isinstance(axis, (list, tuple)) else axis) % rank
        layout = getattr(producer.handle, "data_format", None) if producer else None
        layout = layout or keras.config.image_data_format()
        return axis, 1 if layout == "channels_first" else rank - 1

    @contextmanager
    def replaced(self, model: Any, layer: LayerRef, replacement: Any) -> Iterator[None]:
        owners = [model, *model._flatten_layers(include_self=False, recursive=True)]
        owner, name = next((owner, name) for owner in owners for name, value in vars(owner).items()
                           if value is layer.handle)
        object.__setattr__(owner, name, replacement)
        try:
            yield
        finally:
            object.__setattr__(owner, name, layer.handle)

    def layer_norm_like(self, layer: LayerRef, call: Call) -> Any:
        return keras.layers.LayerNormalization(axis=-1)

    def infer_inputs(self, model: Any, batch: int) -> list[Inputs]:
        inputs = getattr(model, "inputs", None)
        if inputs:
            specs = [InputSpec(tuple(batch if size is None else int(size) for size in tensor.shape),
                               DEFAULT_TOKENS if "int" in str(tensor.dtype) else 0) for tensor in inputs]
            return [Inputs((specs[0],) if len(specs) == 1 else (specs,), (), "from the model's keras.Input")]
        state_size = getattr(model, "state_size", None)
        if state_size is not None:  # an RNN cell: call(inputs, states)
            sizes = list(state_size) if isinstance(state_size, (list, tuple)) else [state_size]
            states = [InputSpec((batch, int(size))) for size in sizes]
            return [Inputs((InputSpec((batch, _CELL_FEATURES)), states), (),
                           f"a cell: {_CELL_FEATURES} input features (an unbuilt cell takes any), states from "
                           f"state_size = {state_size}", cell=True)]
        first = next((layer for layer in model._flatten_layers(include_self=False, recursive=True)
                      if not isinstance(layer, keras.layers.InputLayer)), None)
        if isinstance(first, keras.layers.Embedding):
            return [Inputs((InputSpec((batch, _SEQUENCE_LENGTH), first.input_dim),), (),
                           f"token ids for the first layer, Embedding({first.input_dim}, …)")]
        # An unbuilt Dense or convolution takes inputs of any width: one plausible size is as good as another.
        for kind, sample in _UNBUILT_INPUTS.items():
            if isinstance(first, kind) and not first.built:
                channels_first = getattr(first, "data_format", "channels_last") == "channels_first"
                shape = (sample[-1], *sample[:-1]) if channels_first else sample
                return [Inputs((InputSpec((batch, *shape)),), (),
                               f"for the first layer, an unbuilt {type(first).__name__} (any width fits)")]
        raise ValueError("it has no keras.Input and its first layer does not say what it takes")

    def vocabulary(self, model: Any) -> int:
        first = next((layer for layer in model._flatten_layers(include_self=True, recursive=True)
                      if isinstance(layer, keras.layers.Embedding)), None)
        return 0 if first is None else int(first.input_dim)
