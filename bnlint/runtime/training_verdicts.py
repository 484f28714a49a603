"""The verifiers of the training rules: each runs one training step, one optimizer, or one
batch split the way the flagged code would, on the user's real model, and measures what it
does to the batch-norm statistics (BN104-BN106, BN203, BN204, BN401)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from bnlint.runtime.backend import Backend, LayerRef
from bnlint.runtime.inputs import Batch
from bnlint.runtime.loader import describe
from bnlint.runtime.verdicts import (CONFIRMED, NOT_CHECKABLE, NOT_REPRODUCED, Plot, Subject, Verdict,
                                     batch_norm_layers, close, difference, fixed_model)


# ----- BN104 / BN105 / BN106: one training step, and what it does to the statistics ------------


def _statistics(backend: Backend, norms: list[LayerRef]) -> np.ndarray:
    """Every running mean of `norms`, in one array (empty where none keeps running statistics)."""
    means = [mean for mean in (backend.running_mean(norm) for norm in norms) if mean is not None]
    return np.concatenate(means) if means else np.zeros(0)


def _moved(before: np.ndarray, after: np.ndarray) -> float:
    return float(np.max(np.abs(after - before))) if before.size else 0.0


def _step_moves(backend: Backend, norms: list[LayerRef], step: Callable[[], Any]) -> float:
    """How far one `step()` moves the running statistics of `norms`."""
    before = _statistics(backend, norms)
    step()
    return _moved(before, _statistics(backend, norms))


def verify_training_flag(subject: Subject) -> Verdict:
    """BN104: one step of the model's own train_step (or of a custom loop's call) as written,
    and as fixed (`training=True`): only the latter updates the moving statistics."""
    backend, norms, batch = subject.backend, batch_norm_layers(subject), subject.batch()
    if not norms:
        return Verdict(NOT_REPRODUCED, f"{subject.model_name} contains no batch norm.")
    own = backend.has_own_train_step(subject.model)
    how = "its own train_step" if own else "a training step that calls it without a training flag"
    with subject.preserved():
        written = _step_moves(backend, norms, lambda: backend.own_train_step(subject.model, batch) if own
                              else backend.train_step(subject.model, batch, training=None))
    numbers: dict[str, Any] = {"moving_mean_change_as_written": written, "step": how}
    if written > 0.0:
        return Verdict(NOT_REPRODUCED, f"One step of {how} moves the moving statistics by {written:.3g}: "
                                       "the batch norm trains.", numbers)
    verdict = Verdict(CONFIRMED, "", numbers)
    if own:  # the fix is in train_step: run the fixed source's own step
        fixed = fixed_model(subject, verdict)
        if fixed is None:
            after_fix = 0.0
        else:
            with subject.preserved(fixed.model):
                after_fix = _step_moves(backend, [subject.counterpart(fixed, norm) for norm in norms],
                                        lambda: backend.own_train_step(fixed.model, batch))
    else:
        with subject.preserved():
            after_fix = _step_moves(backend, norms, lambda: backend.train_step(subject.model, batch, training=True))
    numbers["moving_mean_change_with_training_true"] = after_fix
    verdict.fix_verified = verdict.fix_verified is not False and after_fix > 0.0
    verdict.evidence = (f"One step of {how} leaves the moving statistics of {norms[0].where()} where they were "
                        f"(change {written:.1e}): the batch norm runs in inference mode; with training=True the "
                        f"same step moves them by {after_fix:.3g}.")
    return verdict


def _nested_models(subject: Subject) -> list[LayerRef]:
    """BN105's candidates for the pretrained base: models nested in the model, those holding
    batch norm first."""
    nested = [layer for layer in subject.layers if subject.backend.is_model(layer.handle)]
    return sorted(nested, key=lambda base: not any(subject.backend.is_batch_norm(inner)
                                                   for inner in subject.backend.layers(base.handle)))


def _finetune_moves(subject: Subject, model: Any, base: LayerRef) -> float:
    """One fit()-like step (training=True) of `model` with `base` trainable, as when it is
    fine-tuned: how far the base's moving statistics move."""
    backend = subject.backend
    norms = [layer for layer in backend.layers(base.handle) if backend.is_batch_norm(layer)]
    trainable = backend.is_trainable(base)
    with subject.preserved(model):
        backend.set_trainable(base.handle, True)
        try:
            return _step_moves(backend, norms, lambda: backend.train_step(model, subject.batch(), training=True))
        finally:
            backend.set_trainable(base.handle, trainable)


def verify_finetune_mode(subject: Subject) -> Verdict:
    nested = _nested_models(subject)
    if not nested:
        return Verdict(NOT_CHECKABLE, f"{subject.model_name} holds no nested base model; name the model that "
                                      "builds the base in with --model module:factory.")
    base = nested[0]
    if not any(subject.backend.is_batch_norm(inner) for inner in subject.backend.layers(base.handle)):
        return Verdict(NOT_REPRODUCED, f"The base {base.where()} holds no batch norm: fine-tuning has no "
                                       "statistics to overwrite.")
    moved = _finetune_moves(subject, subject.model, base)
    numbers: dict[str, Any] = {"base": base.path, "base_moving_mean_change": moved}
    if moved == 0.0:
        return Verdict(NOT_REPRODUCED, f"A fine-tuning step leaves the moving statistics of {base.where()} as they "
                                       "were.", numbers)
    verdict = Verdict(CONFIRMED, f"One fine-tuning step (training=True, {base.path} trainable) moves the pretrained "
                                 f"moving statistics of {base.where()} by {moved:.3g}", numbers)
    fixed = fixed_model(subject, verdict)
    if fixed is not None:
        kept = _finetune_moves(subject, fixed.model, subject.counterpart(fixed, base))
        numbers["base_moving_mean_change_after_fix"] = kept
        verdict.fix_verified = kept == 0.0
        verdict.evidence += f"; with training=False on its call by {kept:.1e}"
    verdict.evidence += "."
    return verdict


def verify_frozen_statistics(subject: Subject) -> Verdict:
    """BN106: a training step with the batch norms' parameters frozen: the running statistics
    still drift (train mode); in eval mode (FrozenBatchNorm2d, .eval() on the frozen part) not."""
    backend = subject.backend
    norms = batch_norm_layers(subject)
    if not norms:
        return Verdict(NOT_REPRODUCED, f"{subject.model_name} contains no batch norm.")
    frozen = [norm for norm in norms if not backend.is_trainable(norm)]
    freeze_all = not frozen
    scope = "frozen by the model's code" if frozen else "with every parameter frozen, as the flagged statement does"
    frozen = frozen or norms

    def weights() -> np.ndarray:
        return np.concatenate([w for w in map(backend.weight, frozen) if w is not None] or [np.zeros(0)])

    with subject.preserved():
        if freeze_all:
            backend.set_trainable(subject.model, False)
        try:
            before = weights()
            drift = _step_moves(backend, frozen, lambda: backend.train_step(subject.model, subject.batch(), True))
            parameter_change = _moved(before, weights())
            after_fix = _step_moves(backend, frozen, lambda: backend.train_step(subject.model, subject.batch(), False))
        finally:
            if freeze_all:
                backend.set_trainable(subject.model, True)
    numbers = {"frozen_batch_norms": len(frozen), "running_mean_drift": drift,
               "frozen_parameter_change": parameter_change, "running_mean_drift_in_eval_mode": after_fix}
    if drift == 0.0:
        return Verdict(NOT_REPRODUCED, f"A training step leaves the running statistics of {frozen[0].where()} "
                                       f"unchanged ({scope}): they do not drift.", numbers)
    return Verdict(CONFIRMED, f"One training step moves the running mean of {frozen[0].where()} by {drift:.3g} while "
                              f"its parameters ({scope}) move by {parameter_change:.1e}; with the frozen part in eval "
                              f"mode (FrozenBatchNorm2d) by {after_fix:.1e}.", numbers)


# ----- BN203 / BN204: statistics of few samples --------------------------------------------------


_DRAWS = 16
_REFERENCE_BATCH = 32
_DEVICES = 4


def _varied(batch: Batch, seed: int) -> Batch:
    """Samples that differ in offset and scale, as real ones do (random noise alone has
    near-identical statistics in every sample, which would hide what small batches cost)."""
    rng = np.random.default_rng(seed)
    offsets, scales = rng.standard_normal(batch.size), rng.uniform(0.5, 1.5, batch.size)

    def vary(x: np.ndarray) -> np.ndarray:
        if np.issubdtype(x.dtype, np.integer):
            return x
        shape = (-1,) + (1,) * (x.ndim - 1)
        return (offsets.reshape(shape) + scales.reshape(shape) * x).astype(np.float32)

    return batch.map(vary)


def _first_norm_input(subject: Subject, batch: Batch) -> np.ndarray | None:
    """What the first batch norm called in a train-mode pass receives, channels last and flattened."""
    with subject.preserved():
        trace = subject.backend.trace(subject.model, batch, training=True)
    call = next((call for call in trace.calls if subject.backend.is_batch_norm(call.layer)), None)
    if call is None or call.input is None:
        return None
    axis = subject.backend.channel_axis % call.input.ndim
    return np.moveaxis(call.input, axis, -1).reshape(-1, call.input.shape[axis])


def _batch_statistics(subject: Subject, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The first batch norm's per-channel batch means over `_DRAWS` batches of `size` samples,
    and the per-channel spread of its input over all of them."""
    draws = [_first_norm_input(subject, _varied(subject.batch(size, seed=1000 * size + draw), seed=draw))
             for draw in range(_DRAWS)]
    if any(values is None for values in draws):
        return None
    return np.array([values.mean(axis=0) for values in draws]), np.concatenate(draws).std(axis=0) + 1e-12


def _configured_batch_size(subject: Subject) -> int | None:
    found = re.search(r"batches of (\d+) samples", subject.diagnostic.message) or re.search(r"\b(\d+)\b",
                                                                                           subject.anchor_text)
    return int(found.group(1)) if found else None


def verify_small_batch(subject: Subject) -> Verdict:
    size = _configured_batch_size(subject)
    if size is None or size < 2:
        return Verdict(NOT_CHECKABLE, "The batch size could not be read from the finding.")
    small_statistics, large_statistics = _batch_statistics(subject, size), _batch_statistics(subject, _REFERENCE_BATCH)
    if small_statistics is None or large_statistics is None:
        return Verdict(NOT_REPRODUCED, f"The forward pass of {subject.model_name} runs no batch norm.")
    (small, _), (large, std) = small_statistics, large_statistics
    # How far the mean a batch norm subtracts wanders from batch to batch, in its input's standard deviations.
    spread = {n: float(np.mean(means.std(axis=0) / std)) for n, means in ((size, small), (_REFERENCE_BATCH, large))}
    ratio = spread[size] / max(spread[_REFERENCE_BATCH], 1e-12)
    channel = int(np.argmax(small.std(axis=0)))
    numbers = {"batch_size": size, "reference_batch_size": _REFERENCE_BATCH, "draws": _DRAWS,
               "batch_mean_spread": spread[size], "reference_batch_mean_spread": spread[_REFERENCE_BATCH],
               "spread_ratio": ratio}
    plot = Plot("strip", f"Batch mean of channel {channel} at the first batch norm, {_DRAWS} batches each",
                {f"batch of {size}": [float(v) for v in small[:, channel]],
                 f"batch of {_REFERENCE_BATCH}": [float(v) for v in large[:, channel]]},
                xlabel="batch size", ylabel="batch mean (activation units)",
                caption=(f"Each point is the mean one training batch gives channel {channel}; batch norm subtracts it, "
                         "so its scatter is noise added to every activation."))
    if ratio < 1.5:
        return Verdict(NOT_REPRODUCED, f"Batches of {size} give the batch norm statistics about as steady as batches "
                                       f"of {_REFERENCE_BATCH} (spread ratio {ratio:.2f}).", numbers, plots=[plot])
    return Verdict(CONFIRMED, f"With batches of {size} the batch means the first batch norm subtracts scatter "
                              f"{ratio:.1f}x as much as with batches of {_REFERENCE_BATCH} (samples differing in "
                              "offset and scale, as real ones do): noise in every normalized activation.",
                   numbers, plots=[plot])


def verify_per_device_statistics(subject: Subject) -> Verdict:
    """BN204: one batch split as DataParallel / DDP scatter it over devices (here on one
    device): each shard normalized with its own statistics vs the pooled ones SyncBatchNorm uses."""
    backend = subject.backend
    norms = batch_norm_layers(subject)
    if not norms:
        return Verdict(NOT_REPRODUCED, f"{subject.model_name} contains no batch norm.")
    count, synced = backend.sync_batch_norms(subject.model)
    if all(type(norm.handle).__name__ == "SyncBatchNorm" for norm in norms):
        return Verdict(NOT_REPRODUCED, f"Every batch norm of {subject.model_name} is already a SyncBatchNorm: the "
                                       "devices pool their statistics.", {"sync_batch_norms": count})
    per_device = max(subject.inputs.shape[0], 2)
    batch = _varied(subject.batch(per_device * _DEVICES, seed=7), seed=7)
    shards = batch.shards(_DEVICES)
    with subject.preserved():
        pooled = backend.forward(subject.model, batch, training=True)
        split = np.concatenate([backend.forward(subject.model, shard, training=True) for shard in shards])
    inputs = _first_norm_input(subject, batch)
    gap = difference(pooled, split)
    numbers: dict[str, Any] = {"devices": _DEVICES, "per_device_batch": per_device, "output_max_difference": gap,
                               "sync_batch_norms_after_fix": synced, "batch_norms": count}
    plots = []
    if inputs is not None:
        rows = inputs.reshape(_DEVICES, -1, inputs.shape[-1])  # samples stay together, in order
        pooled_mean, pooled_std = inputs.mean(axis=0), inputs.std(axis=0) + 1e-12
        offsets = [float(np.mean(np.abs(rows[d].mean(axis=0) - pooled_mean) / pooled_std)) for d in range(_DEVICES)]
        numbers["shard_mean_offsets"] = offsets
        channel = int(np.argmax(np.abs(rows.mean(axis=1) - pooled_mean).max(axis=0)))
        plots.append(Plot("bars", f"Mean of channel {channel} at the first batch norm, per device",
                          {**{f"device {d}": [float(rows[d, :, channel].mean())] for d in range(_DEVICES)},
                           "pooled (SyncBatchNorm)": [float(pooled_mean[channel])]},
                          xlabel="statistics used", ylabel="batch mean (activation units)",
                          reference="pooled (SyncBatchNorm)",
                          caption=(f"Without SyncBatchNorm each device subtracts its own bar; SyncBatchNorm subtracts "
                                   f"the pooled one. Batch of {per_device * _DEVICES} split over {_DEVICES} devices.")))
    fix = synced == count > 0
    if close(pooled, split):
        return Verdict(NOT_REPRODUCED, f"Split over {_DEVICES} devices, {subject.model_name} computes what it computes "
                                       f"on the whole batch (max difference {gap:.1e}).", numbers, fix, plots)
    return Verdict(CONFIRMED, f"Split over {_DEVICES} devices of {per_device} samples, the outputs differ from the "
                              f"whole batch's by up to {gap:.3g}: each device normalizes with its own shard's "
                              f"statistics; converted, {synced} of {count} batch norms pool them.", numbers, fix, plots)


# ----- BN401: weight decay on batch-norm parameters -----------------------------------------------


_DECAY_STEPS = 100
_DEFAULT_LR = 0.1


def _optimizer_settings(anchor: str) -> tuple[str, dict[str, float], str]:
    """The optimizer class and its literal lr / momentum / weight_decay, read from the flagged call."""
    called = re.search(r"(\w+)\s*\(", anchor)
    options = {key: float(value) for key, value in re.findall(
        r"\b(lr|momentum|weight_decay)\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", anchor)}
    lr_source = "as written" if "lr" in options else f"{_DEFAULT_LR} (no literal lr in the call)"
    options.setdefault("lr", _DEFAULT_LR)
    return (called.group(1) if called else "SGD"), options, lr_source


def verify_weight_decay(subject: Subject) -> Verdict:
    backend = subject.backend
    optimizer, options, lr_source = _optimizer_settings(subject.anchor_text)
    norms = [norm for norm in batch_norm_layers(subject) if backend.weight(norm) is not None]
    if not norms:
        return Verdict(NOT_REPRODUCED, f"The batch norms of {subject.model_name} have no scale or shift "
                                       "(affine=False): weight decay has nothing of theirs to shrink.")
    decay = options.get("weight_decay", 0.0)
    numbers: dict[str, Any] = {"optimizer": optimizer, **options, "lr_source": lr_source, "steps": _DECAY_STEPS}
    if decay <= 0.0:
        return Verdict(NOT_REPRODUCED, "The optimizer call sets no positive weight_decay literal.", numbers)

    def size() -> float:  # the RMS of the batch norms' scales
        return float(np.sqrt(np.mean(np.concatenate([backend.weight(norm) for norm in norms]) ** 2)))

    start = size()
    runs = {}
    for label, exempt in (("decayed", []), ("no-decay group", norms)):
        with subject.preserved():
            try:
                runs[label] = backend.optimizer_steps(subject.model, optimizer, options, _DECAY_STEPS, exempt, size)
            except (AttributeError, TypeError, ValueError) as error:
                return Verdict(NOT_CHECKABLE, f"torch.optim.{optimizer} with {options} fails: {describe(error)}.")
    shrink = 1.0 - runs["decayed"][-1] / start
    kept = 1.0 - runs["no-decay group"][-1] / start
    numbers.update({"gamma_rms_before": start, "gamma_shrink_after_steps": shrink, "gamma_shrink_with_no_decay_group": kept,
                    "steps_to_halve": float(np.log(0.5) / np.log(1.0 - shrink) * _DECAY_STEPS) if 0 < shrink < 1 else None})
    plot = Plot("lines", f"Batch-norm scale under {optimizer}(weight_decay={decay:g}), no loss gradient",
                {"all parameters decayed (as written)": [start, *runs["decayed"]],
                 "norm parameters in a no-decay group": [start, *runs["no-decay group"]]},
                xlabel="optimizer step", ylabel="RMS of batch-norm gamma (scale, unitless)",
                caption="Only weight decay acts here (the loss gradient is zero): the line that falls is what decay alone "
                        "does to the batch norms' scales.")
    if shrink <= 0.0:
        return Verdict(NOT_REPRODUCED, f"{_DECAY_STEPS} steps of {optimizer} leave the batch-norm scales as they were.",
                       numbers, plots=[plot])
    return Verdict(CONFIRMED, f"With the loss gradient at zero, {_DECAY_STEPS} steps of {optimizer} "
                              f"(lr={options['lr']:g}, weight_decay={decay:g}) shrink the batch-norm scales by "
                              f"{shrink:.2%}; in a no-decay group by {kept:.2%}.", numbers, plots=[plot])
