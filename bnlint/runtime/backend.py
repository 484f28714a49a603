"""What the verifiers need from a framework, as plain numpy data: the layers of a model and
where the user's code built them, a traced forward pass, state snapshots and a few batch-norm
facts. `torch_backend` and `keras_backend` implement it; the verifiers stay framework-free."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bnlint.runtime.inputs import Batch, Inputs

LEARNING_RATE = 0.01  # of the one-step training experiments


@dataclass(frozen=True)
class Site:
    """Where the user's code constructed a layer: the call's span (1-based lines and columns)."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int

    def contains(self, line: int, column: int) -> bool:
        return (self.line, self.column) <= (line, column) <= (self.end_line, self.end_column)

    @property
    def size(self) -> tuple[int, int]:
        return (self.end_line - self.line, self.end_column - self.column)


@dataclass(eq=False)
class LayerRef:
    """A layer of a loaded model: its path in the model (`stem.1`), class name, construction
    site (None when built outside the user's files) and the framework object."""

    path: str
    kind: str
    site: Site | None
    handle: Any = field(repr=False)

    def __eq__(self, other: object) -> bool:  # refs from different listings name one layer
        return isinstance(other, LayerRef) and other.handle is self.handle

    def __hash__(self) -> int:
        return id(self.handle)

    def where(self) -> str:
        shown = f"{self.kind} '{self.path}'"
        return f"{shown} (line {self.site.line})" if self.site else shown


@dataclass(eq=False)
class Call:
    """One layer call seen while tracing a forward pass (inputs and output as numpy copies)."""

    layer: LayerRef
    input: np.ndarray
    output: np.ndarray | None = None  # None when the call raised


@dataclass
class Trace:
    calls: list[Call]
    output: np.ndarray | None
    error: BaseException | None = None
    failed_in: LayerRef | None = None  # the innermost layer running when `error` was raised

    def calls_of(self, layer: LayerRef) -> list[Call]:
        return [call for call in self.calls if call.layer == layer]


class Backend:
    """The framework operations the verifiers use. Arrays in and out are numpy."""

    name: str
    channel_axis: int  # of a batch norm's input, in the framework's default layout
    running_mean_name: str  # what the framework calls a batch norm's running mean
    call_method: str  # the method a model's arguments go to: forward / call

    def signature(self, model: Any) -> str:
        try:
            return str(inspect.signature(getattr(model, self.call_method)))
        except (TypeError, ValueError):
            return "(...)"

    def call_parameters(self, model: Any, required: bool = True) -> list[str]:
        """The arguments a call of the model takes (only those without a default), in order."""
        try:
            parameters = inspect.signature(getattr(model, self.call_method)).parameters.values()
        except (TypeError, ValueError):
            return []
        return [p.name for p in parameters if (p.default is inspect.Parameter.empty or not required)
                and p.name != "training" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def prepare(self, model: Any) -> Any:
        """The model, placed on the requested device."""
        raise NotImplementedError

    def is_model(self, value: object) -> bool:
        raise NotImplementedError

    def layers(self, model: Any) -> list[LayerRef]:
        """Every sub-layer (not the model itself), in registration order."""
        raise NotImplementedError

    def forward(self, model: Any, batch: Batch, training: bool | None) -> np.ndarray:
        """The first output array; `training=None` calls the model as code that passes no
        training flag would (Keras: its default)."""
        raise NotImplementedError

    def trace(self, model: Any, batch: Batch, training: bool) -> Trace:
        """A forward pass recording every layer call; an exception is caught and recorded."""
        raise NotImplementedError

    def state(self, model: Any) -> Any:
        """A copy of every parameter and buffer (running statistics included)."""
        raise NotImplementedError

    def load_state(self, model: Any, state: Any) -> None:
        raise NotImplementedError

    def parameter_count(self, model: Any) -> int:
        raise NotImplementedError

    def is_batch_norm(self, layer: LayerRef) -> bool:
        raise NotImplementedError

    def bias(self, layer: LayerRef) -> np.ndarray | None:
        raise NotImplementedError

    def set_bias(self, layer: LayerRef, value: np.ndarray) -> None:
        raise NotImplementedError

    def running_mean(self, layer: LayerRef) -> np.ndarray:
        raise NotImplementedError

    def beta(self, layer: LayerRef) -> np.ndarray:
        raise NotImplementedError

    def fresh_copy(self, layer: LayerRef) -> Any:
        """A new batch norm like this one (same configuration), with fresh statistics."""
        raise NotImplementedError

    def call_layer(self, layer: Any, x: np.ndarray, training: bool) -> np.ndarray:
        return self.forward(layer, Batch((x,)), training)

    def copy_weights(self, source: Any, target: Any, dropped_biases: set[str]) -> None:
        """Load `source`'s weights into `target` (the same model without `dropped_biases`)."""
        raise NotImplementedError

    def fold_biases(self, source: Any, target: Any, pairs: dict[str, str]) -> None:
        """Checkpoint migration: load `source`'s weights into `target` with each dropped
        bias (producer path → batch-norm path) folded into the batch norm's running mean."""
        raise NotImplementedError

    def channels_normalized(self, layer: LayerRef, call: Call, producer: LayerRef | None) -> tuple[int, int]:
        """(the axis a batch norm normalizes, the channel axis of its input's data layout,
        as `producer` — the layer whose output it normalizes — lays it out)."""
        raise NotImplementedError

    def replaced(self, model: Any, layer: LayerRef, replacement: Any) -> AbstractContextManager[None]:
        """The model with `layer` swapped for `replacement` for the duration."""
        raise NotImplementedError

    def layer_norm_like(self, layer: LayerRef, call: Call) -> Any:
        """A LayerNorm over the features of one sample, for the input `call` saw."""
        raise NotImplementedError

    # --- training experiments (BN104–BN106, BN204, BN401) ---

    def train_step(self, model: Any, batch: Batch, training: bool | None) -> None:
        """One gradient step (SGD on the mean square output) over the trainable parameters,
        the forward pass run with `training` as `forward` takes it."""
        raise NotImplementedError

    def has_own_train_step(self, model: Any) -> bool:
        """Whether the model overrides its framework's training step (a Keras `train_step`)."""
        return False

    def own_train_step(self, model: Any, batch: Batch) -> None:
        """Run the model's own training step once on the batch, with zero targets."""
        raise NotImplementedError

    def is_trainable(self, layer: LayerRef) -> bool:
        """Whether any parameter of the layer would be updated by an optimizer."""
        raise NotImplementedError

    def set_trainable(self, model: Any, trainable: bool) -> None:
        raise NotImplementedError

    def weight(self, layer: LayerRef) -> np.ndarray | None:
        """A batch norm's scale (gamma); None without one."""
        raise NotImplementedError

    def optimizer_steps(self, model: Any, optimizer: str, options: dict[str, float], steps: int,
                        exempt: list[LayerRef], observe: Callable[[], float]) -> list[float]:
        """`observe()` after each of `steps` steps of the named optimizer with a zero loss gradient,
        so that only weight decay acts; `exempt` layers' parameters in a group with weight_decay=0."""
        raise NotImplementedError

    def sync_batch_norms(self, model: Any) -> tuple[int, int]:
        """(batch norms, of which cross-device ones) in a copy converted as the BN204 fix converts."""
        raise NotImplementedError

    def infer_inputs(self, model: Any, batch: int) -> list[Inputs]:
        """Guesses at the model's arguments, most likely first, from its first layer and a
        cell's hidden size; ValueError saying which argument could not be inferred."""
        raise NotImplementedError

    def vocabulary(self, model: Any) -> int:
        """The number of ids the model's first embedding takes; 0 without one."""
        raise NotImplementedError
