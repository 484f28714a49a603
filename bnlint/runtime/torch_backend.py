"""The runtime checker's PyTorch side: hooks trace the forward pass; state dicts snapshot,
copy and migrate weights. Imported only in the worker process."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from bnlint.runtime.backend import Backend, Call, LayerRef, Site, Trace

# First layer kind → the input shape it implies, after the batch and channel dimensions.
_SPATIAL = {nn.Conv1d: (32,), nn.Conv2d: (32, 32), nn.Conv3d: (16, 16, 16),
            nn.ConvTranspose1d: (32,), nn.ConvTranspose2d: (32, 32), nn.ConvTranspose3d: (16, 16, 16),
            nn.BatchNorm2d: (32, 32), nn.BatchNorm3d: (16, 16, 16)}  # fmt: skip


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
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    def forward(self, model: nn.Module, x: np.ndarray, training: bool) -> np.ndarray:
        model.train(training)
        torch.manual_seed(self.seed)  # dropout masks repeat from one forward pass to the next: experiments compare outputs
        with torch.no_grad():
            output = _numpy(model(self._tensor(x)))
        if output is None:
            raise TypeError(f"{type(model).__name__}.forward returned no tensor")
        return output

    def trace(self, model: nn.Module, x: np.ndarray, training: bool) -> Trace:
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
            trace.output = self.forward(model, x, training)
        except Exception as error:  # noqa: BLE001 - the user's forward may raise anything; it is evidence
            trace.error = error
            trace.failed_in = running[-1][0] if running else None
        finally:
            for handle in handles:
                handle.remove()
        return trace

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

    def call_layer(self, layer: nn.Module, x: np.ndarray, training: bool) -> np.ndarray:
        return self.forward(layer, x, training)

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

    def infer_input_shape(self, model: nn.Module, batch: int) -> tuple[tuple[int, ...], str] | None:
        # The first layer that holds weights or statistics decides; any other kind gives no guess.
        first = next((ref.handle for ref in self.layers(model) if not list(ref.handle.children())
                      and next(iter(ref.handle.state_dict()), None) is not None), None)
        if isinstance(first, nn.Linear):
            return (batch, first.in_features), f"inferred from the first layer, Linear({first.in_features}, …)"
        if isinstance(first, nn.BatchNorm1d):
            return (batch, first.num_features), f"inferred from the first layer, BatchNorm1d({first.num_features})"
        for kind, spatial in _SPATIAL.items():
            if isinstance(first, kind):
                channels = first.num_features if isinstance(first, _BatchNorm) else first.in_channels
                return (batch, channels, *spatial), f"inferred from the first layer, {kind.__name__}({channels}, …)"
        return None
