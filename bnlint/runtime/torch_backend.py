"""The runtime checker's PyTorch side: hooks trace the forward pass; state dicts snapshot,
copy and migrate weights. Imported only in the worker process."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from bnlint.runtime.backend import LEARNING_RATE, Backend, Call, LayerRef, Site, Trace
from bnlint.runtime.inputs import Batch, Inputs, InputSpec

# First layer kind → the input shape it implies, after the batch and channel dimensions.
_SPATIAL = {nn.Conv1d: (32,), nn.Conv2d: (32, 32), nn.Conv3d: (16, 16, 16),
            nn.ConvTranspose1d: (32,), nn.ConvTranspose2d: (32, 32), nn.ConvTranspose3d: (16, 16, 16),
            nn.BatchNorm2d: (32, 32), nn.BatchNorm3d: (16, 16, 16)}  # fmt: skip


# A recurrent state argument (a cell's `forward(x, h)`), and the attributes that size it.
_STATE_NAME = re.compile(r"h|hx|h0|h_?prev|prev_h|hidden(_state)?|state|carry")
_HIDDEN_ATTRIBUTES = ("hidden_size", "hidden_dim", "hidden_features", "num_hiddens", "n_hidden", "state_size", "units")
_SEQUENCE_LENGTH = 16  # token ids per sample for a model that starts with an embedding
_IMAGE_SIZES = (28, 64, 224)  # tried after 32x32 (MNIST, small crops, ImageNet)


def migrate_state_dict(state: Mapping[str, torch.Tensor], pairs: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """A checkpoint for the model fixed by BN304: each producer's bias (`pairs`: producer
    module path → batch-norm module path) is folded into the batch norm's running mean and
    removed, so eval-mode outputs stay the same."""
    migrated = dict(state)
    for producer, norm in pairs.items():
        bias = migrated.pop(f"{producer}.bias")
        migrated[f"{norm}.running_mean"] = migrated[f"{norm}.running_mean"] - bias
    return migrated


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) else ()
    return next((t for t in map(_first_tensor, items) if t is not None), None)


def _numpy(value: Any) -> np.ndarray | None:
    tensor = _first_tensor(value)
    return None if tensor is None else tensor.detach().to("cpu", torch.float64).numpy().copy()


class TorchBackend(Backend):
    name = "torch"
    channel_axis = 1
    running_mean_name = "running_mean"
    call_method = "forward"

    def __init__(self, device: str, sites: Mapping[int, Site], seed: int) -> None:
        self.device = torch.device(device)
        self.sites = sites
        self.seed = seed

    def prepare(self, model: Any) -> Any:
        return model.to(self.device)

    def is_model(self, value: object) -> bool:
        return isinstance(value, nn.Module)

    def layers(self, model: nn.Module) -> list[LayerRef]:
        return [LayerRef(name, type(module).__name__, self.sites.get(id(module)), module)
                for name, module in model.named_modules() if name]

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        integer = np.issubdtype(x.dtype, np.integer)
        return torch.as_tensor(x, dtype=torch.long if integer else torch.float32, device=self.device)

    def forward(self, model: nn.Module, batch: Batch, training: bool | None) -> np.ndarray:
        model.train(training is not False)
        torch.manual_seed(self.seed)  # dropout masks repeat from one forward pass to the next: experiments compare outputs
        tensors = batch.map(self._tensor)
        with torch.no_grad():
            output = _numpy(model(*tensors.args, **tensors.kwargs))
        if output is None:
            raise TypeError(f"{type(model).__name__}.forward returned no tensor")
        return output

    def trace(self, model: nn.Module, batch: Batch, training: bool) -> Trace:
        refs = self.layers(model)
        calls: list[Call] = []
        running: list[tuple[LayerRef, Call]] = []
        trace = Trace(calls, None)

        def before(ref: LayerRef) -> Any:
            def hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
                call = Call(ref, _numpy(args))
                calls.append(call)
                running.append((ref, call))
            return hook

        def after(_module: nn.Module, _args: Any, output: Any) -> None:
            _, call = running.pop()
            call.output = _numpy(output)

        handles = [h for ref in refs for h in (ref.handle.register_forward_pre_hook(before(ref)),
                                              ref.handle.register_forward_hook(after))]
        try:
            trace.output = self.forward(model, batch, training)
        except Exception as error:  # noqa: BLE001 - the user's forward may raise anything; it is evidence
            trace.error = error
            trace.failed_in = running[-1][0] if running else None
        finally:
            for handle in handles:
                handle.remove()
        return trace

    def train_step(self, model: nn.Module, batch: Batch, training: bool | None) -> None:
        model.train(training is not False)
        tensors = batch.map(self._tensor)
        trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
        output = _first_tensor(model(*tensors.args, **tensors.kwargs))
        if not trainable or output is None or not output.requires_grad:
            return  # a frozen model: the forward pass is the whole step
        optimizer = torch.optim.SGD(trainable, lr=LEARNING_RATE)
        optimizer.zero_grad()
        output.pow(2).mean().backward()
        optimizer.step()

    def is_trainable(self, layer: LayerRef) -> bool:
        return any(parameter.requires_grad for parameter in layer.handle.parameters())

    def set_trainable(self, model: nn.Module, trainable: bool) -> None:
        model.requires_grad_(trainable)

    def weight(self, layer: LayerRef) -> np.ndarray | None:
        weight = getattr(layer.handle, "weight", None)
        return None if weight is None else _numpy(weight)

    def optimizer_steps(self, model: nn.Module, optimizer: str, options: dict[str, float], steps: int,
                        exempt: list[LayerRef], observe: Callable[[], float]) -> list[float]:
        exempted = {id(parameter) for layer in exempt for parameter in layer.handle.parameters()}
        parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
        groups = [{"params": [p for p in parameters if id(p) not in exempted]},
                  {"params": [p for p in parameters if id(p) in exempted], "weight_decay": 0.0}]
        chosen = getattr(torch.optim, optimizer)([group for group in groups if group["params"]], **options)
        observed = []
        for _ in range(steps):
            for parameter in parameters:
                parameter.grad = torch.zeros_like(parameter)
            chosen.step()
            observed.append(observe())
        for parameter in parameters:
            parameter.grad = None
        return observed

    def sync_batch_norms(self, model: nn.Module) -> tuple[int, int]:
        converted = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(model))
        norms = [module for module in converted.modules() if isinstance(module, _BatchNorm)]
        return len(norms), sum(isinstance(module, nn.SyncBatchNorm) for module in norms)

    def state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return {key: value.detach().clone() for key, value in model.state_dict().items()}

    def load_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        model.load_state_dict(state)

    def parameter_count(self, model: nn.Module) -> int:
        return sum(parameter.numel() for parameter in model.parameters())

    def is_batch_norm(self, layer: LayerRef) -> bool:
        return isinstance(layer.handle, _BatchNorm)

    def bias(self, layer: LayerRef) -> np.ndarray | None:
        bias = getattr(layer.handle, "bias", None)
        return _numpy(bias) if isinstance(bias, torch.Tensor) else None

    def set_bias(self, layer: LayerRef, value: np.ndarray) -> None:
        with torch.no_grad():
            layer.handle.bias.copy_(self._tensor(value))

    def running_mean(self, layer: LayerRef) -> np.ndarray:
        return _numpy(layer.handle.running_mean)

    def beta(self, layer: LayerRef) -> np.ndarray:
        bias = layer.handle.bias
        return np.zeros(layer.handle.num_features) if bias is None else _numpy(bias)

    def fresh_copy(self, layer: LayerRef) -> nn.Module:
        module = copy.deepcopy(layer.handle)
        module.reset_running_stats()
        return module

    def copy_weights(self, source: nn.Module, target: nn.Module, dropped_biases: set[str]) -> None:
        state = {key: value for key, value in source.state_dict().items()
                 if key not in {f"{path}.bias" for path in dropped_biases}}
        target.load_state_dict(state)  # strict: every other key must match

    def fold_biases(self, source: nn.Module, target: nn.Module, pairs: dict[str, str]) -> None:
        target.load_state_dict(migrate_state_dict(self.state(source), pairs))

    def channels_normalized(self, layer: LayerRef, call: Call, producer: LayerRef | None) -> tuple[int, int]:
        return 1, 1  # a torch batch norm always normalizes dimension 1, the channel dimension

    @contextmanager
    def replaced(self, model: nn.Module, layer: LayerRef, replacement: nn.Module) -> Iterator[None]:
        owner_path, _, name = layer.path.rpartition(".")
        owner = model.get_submodule(owner_path)
        setattr(owner, name, replacement.to(self.device))
        try:
            yield
        finally:
            setattr(owner, name, layer.handle)

    def layer_norm_like(self, layer: LayerRef, call: Call) -> nn.Module:
        channels = layer.handle.num_features
        # GroupNorm with one group is LayerNorm over (C, *spatial), for any rank.
        return nn.LayerNorm(channels) if call.input.ndim == 2 else nn.GroupNorm(1, channels)

    def _first_input(self, model: nn.Module, batch: int) -> tuple[InputSpec, str] | None:
        # The first layer that holds weights or statistics decides; any other kind gives no guess.
        first = next((ref.handle for ref in self.layers(model) if not list(ref.handle.children())
                      and next(iter(ref.handle.state_dict()), None) is not None), None)
        if isinstance(first, nn.Embedding):
            return (InputSpec((batch, _SEQUENCE_LENGTH), first.num_embeddings),
                    f"token ids for the first layer, Embedding({first.num_embeddings}, …)")
        if isinstance(first, nn.RNNBase):
            shape = (batch, _SEQUENCE_LENGTH) if first.batch_first else (_SEQUENCE_LENGTH, batch)
            return (InputSpec((*shape, first.input_size)),
                    f"a sequence for the first layer, {type(first).__name__}({first.input_size}, …)")
        if isinstance(first, nn.Linear):
            return InputSpec((batch, first.in_features)), f"inferred from the first layer, Linear({first.in_features}, …)"
        if isinstance(first, nn.BatchNorm1d):
            return (InputSpec((batch, first.num_features)),
                    f"inferred from the first layer, BatchNorm1d({first.num_features})")
        for kind, spatial in _SPATIAL.items():
            if isinstance(first, kind):
                channels = first.num_features if isinstance(first, _BatchNorm) else first.in_channels
                return (InputSpec((batch, channels, *spatial)),
                        f"inferred from the first layer, {kind.__name__}({channels}, …)")
        size = getattr(model, "input_size", None)  # nn.RNNCellBase and cells written like it
        if isinstance(size, int):
            return InputSpec((batch, size)), f"inferred from {type(model).__name__}.input_size = {size}"
        return None

    def infer_inputs(self, model: nn.Module, batch: int) -> list[Inputs]:
        required = self.call_parameters(model) or ["input"]
        first = self._first_input(model, batch)
        if first is None:
            raise ValueError(f"its first layer does not say what {required[0]} is")
        spec, source = first
        # A Linear's input may be one step or a whole sequence (a model that runs a cell over time).
        firsts = [(spec, source)] + ([(InputSpec((batch, _SEQUENCE_LENGTH, spec.shape[1])),
                                       f"{source}, as a sequence of {_SEQUENCE_LENGTH} steps")]
                                     if len(spec.shape) == 2 and not spec.tokens else [])
        if len(spec.shape) == 4:  # images: the common sizes, for a model whose head fixes one
            firsts += [(InputSpec((*spec.shape[:2], size, size)), f"{source}, at {size}x{size}")
                       for size in _IMAGE_SIZES if size != spec.shape[2]]
        states: list[tuple[Any, str]] = [((), "")]
        if len(required) > 2:
            raise ValueError(f"nothing in the model says what {', '.join(required[2:])} is")
        if len(required) == 2:
            hidden = _hidden_size(model) if _STATE_NAME.fullmatch(required[1]) else None
            if hidden is None:
                raise ValueError(f"nothing in the model says what {required[1]} is")
            state = InputSpec((batch, hidden[1]))
            shown = f"{required[1]} of {hidden[0]} = {hidden[1]}"
            states = [((state,), shown), (((state, state),), f"{shown}, as (h, c)")]
        cell = len(required) == 2 or any(_STATE_NAME.fullmatch(name) for name in self.call_parameters(model, required=False))
        return [Inputs((first_spec, *state_args), (), "; ".join(filter(None, (first_source, state_source))), cell)
                for first_spec, first_source in firsts for state_args, state_source in states]

    def vocabulary(self, model: nn.Module) -> int:
        first = next((module for module in model.modules() if isinstance(module, nn.Embedding)), None)
        return 0 if first is None else first.num_embeddings


def _hidden_size(model: nn.Module) -> tuple[str, int] | None:
    """(attribute, size) of a recurrent state, from the model's own attributes."""
    return next(((name, value) for name in _HIDDEN_ATTRIBUTES
                 if isinstance(value := getattr(model, name, None), int) and value > 0), None)
