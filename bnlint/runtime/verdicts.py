"""One verifier per experiment, mapped to the rule codes it checks (`VERIFIERS`: BN101,
BN102, BN103 and BN107 share the batch-dependence experiment): each runs on the user's real
model and turns what it measured into a verdict — confirmed, not reproduced, or not checkable (and why) —
and, where the rule has a fix, proves or refutes it on the model bnlint's fix produces.

Verifiers see the framework only through `Backend`, with numpy arrays, so one verifier
serves PyTorch and Keras alike."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bnlint.diagnostics import Diagnostic
from bnlint.runtime.backend import Backend, Call, LayerRef, Trace
from bnlint.runtime.inputs import Batch, Inputs
from bnlint.runtime.loader import describe

CONFIRMED = "confirmed"
NOT_REPRODUCED = "not-reproduced"
NOT_CHECKABLE = "not-checkable"

_RELATIVE_TOLERANCE = 1e-4  # float32 forward passes, compared in float64
_WARMUP_STEPS = 5  # train-mode steps that give running statistics something to hold
_MOMENTUM_STEPS = 60
_MOMENTUM_STEPS_MAX = 3000
_TRUE_MEAN = 2.0
_BATCH_NOISE = 0.5  # sd of a batch's mean around the true mean (sampling noise of real batches)


@dataclass
class Plot:
    """Data for one small chart of the HTML report (drawn by the parent process)."""

    kind: str  # "strip" (values per group), "lines" (series over steps) or "bars"
    title: str
    series: dict[str, list[float]]
    xlabel: str = ""
    ylabel: str = ""  # with its unit
    caption: str = ""  # one line: what the plot shows
    points: tuple[str, ...] = ()  # series of a "lines" plot drawn as dots (samples, not a trajectory)
    reference: str = ""  # the series the others are measured against (a true or pooled value), set apart


@dataclass
class Verdict:
    verdict: str
    evidence: str  # one sentence
    numbers: dict[str, Any] = field(default_factory=dict)
    fix_verified: bool | None = None  # None where the rule has no fix
    plots: list[Plot] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "plots"}


@dataclass
class Fixed:
    """The model built from bnlint's fixed source, its layers in the original's order."""

    model: Any
    layers: list[LayerRef]


@dataclass
class Subject:
    """A finding and the model it is checked on."""

    diagnostic: Diagnostic
    backend: Backend
    model_name: str
    model: Any
    layers: list[LayerRef]
    matched: list[LayerRef]  # the layers the finding is about
    inputs: Inputs
    seed: int
    fixed: Callable[[], Fixed]  # raises ValueError when the finding has no fix or it cannot be built
    anchor_text: str = ""  # the source text the finding points at

    def batch(self, size: int | None = None, seed: int = 0) -> Batch:
        return self.inputs.batch(size, self.seed + seed)

    def counterpart(self, fixed: Fixed, layer: LayerRef) -> LayerRef:
        """The fixed model builds the same layers in the same order."""
        return fixed.layers[self.layers.index(layer)]

    @contextmanager
    def preserved(self, model: Any = None) -> Iterator[None]:
        """Run train-mode experiments without leaving their running statistics behind."""
        model = self.model if model is None else model
        state = self.backend.state(model)
        try:
            yield
        finally:
            self.backend.load_state(model, state)


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return difference(a, b) <= _RELATIVE_TOLERANCE * (1.0 + float(np.max(np.abs(a))))


def _failure(trace: Trace) -> str:
    where = f" in {trace.failed_in.where()}" if trace.failed_in else ""
    return f"the forward pass fails{where}: {describe(trace.error)}" if trace.error else ""


def _sentence(text: str) -> str:
    return f"{text[0].upper()}{text[1:]}."


def _not_checkable_failure(trace: Trace) -> Verdict:
    return Verdict(NOT_CHECKABLE, _sentence(_failure(trace)))


def _same_values(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """The same values, perhaps moved around (view, reshape, permute, flatten)."""
    if a is None or b is None or a.size != b.size:
        return False
    return bool(np.allclose(np.sort(a, axis=None), np.sort(b, axis=None), rtol=1e-6, atol=1e-6))


def _producer(trace: Trace, call: Call) -> LayerRef | None:
    """The layer whose output `call` received (the last earlier call with those values)."""
    earlier = trace.calls[: trace.calls.index(call)]
    return next((c.layer for c in reversed(earlier) if c.layer != call.layer
                 and c.output is not None and _same_values(c.output, call.input)), None)


def fixed_model(subject: Subject, verdict: Verdict) -> Fixed | None:
    """The model built from bnlint's fixed source; None, with the verdict saying why the fix
    failed, when it cannot be built."""
    try:
        return subject.fixed()
    except ValueError as error:
        verdict.fix_verified, verdict.numbers["fix_problem"] = False, str(error)
        return None


def _is_failure_in(trace: Trace, layers: list[LayerRef]) -> bool:
    return trace.error is not None and trace.failed_in is not None and trace.failed_in in layers


# ----- BN302 / BN303: the batch norm does not fit its input ----------------------------------


def _shape_problem(subject: Subject, trace: Trace, layers: list[LayerRef]) -> tuple[str, dict[str, Any]] | None:
    """Why a batch norm does not fit what it receives, from a trace; None when all fit."""
    if _is_failure_in(trace, layers):
        call = trace.calls_of(trace.failed_in)[-1]
        numbers = {"input_shape": list(call.input.shape) if call.input is not None else None}
        return _failure(trace), numbers
    for layer in layers:
        for call in trace.calls_of(layer):
            axis, channel_axis = subject.backend.channels_normalized(layer, call, _producer(trace, call))
            if axis != channel_axis:
                shape = tuple(call.input.shape)
                return (f"{layer.where()} normalizes axis {axis} (size {shape[axis]}) of its {shape} input, "
                        f"whose channels are on axis {channel_axis} (size {shape[channel_axis]})",
                        {"input_shape": list(shape), "normalized_axis": axis, "channel_axis": channel_axis})
    return None


def verify_shape(subject: Subject) -> Verdict:
    norms = [layer for layer in subject.matched if subject.backend.is_batch_norm(layer)]
    with subject.preserved():
        trace = subject.backend.trace(subject.model, subject.batch(), training=True)
    problem = _shape_problem(subject, trace, norms)
    if problem is None:
        if trace.error:
            return _not_checkable_failure(trace)
        if not any(trace.calls_of(layer) for layer in norms):
            return Verdict(NOT_CHECKABLE, f"The forward pass of {subject.model_name} never calls the batch norm.")
        shapes = [list(call.input.shape) for layer in norms for call in trace.calls_of(layer)]
        return Verdict(NOT_REPRODUCED, f"{norms[0].where()} normalizes the channels of its {tuple(shapes[0])} "
                                       "input without error.", {"input_shape": shapes[0]})
    message, numbers = problem
    verdict = Verdict(CONFIRMED, _sentence(message), numbers)
    fixed = None if subject.diagnostic.fix is None else fixed_model(subject, verdict)
    if fixed is None:
        return verdict
    fixed_norms = [subject.counterpart(fixed, layer) for layer in norms]
    with subject.preserved(fixed.model):
        fixed_trace = subject.backend.trace(fixed.model, subject.batch(), training=True)
    remaining = _shape_problem(subject, fixed_trace, fixed_norms)
    verdict.fix_verified = remaining is None and all(fixed_trace.calls_of(layer) for layer in fixed_norms)
    if remaining is not None:
        verdict.numbers["fix_problem"] = remaining[0]
    return verdict


# ----- BN304: the bias before a batch norm is cancelled ----------------------------------------


def _norm_fed_by(trace: Trace, producer: LayerRef, backend: Backend) -> LayerRef | None:
    """The batch norm that receives `producer`'s output unchanged (values only moved around)."""
    calls = trace.calls_of(producer)
    if not calls:
        return None
    start = trace.calls.index(calls[-1])
    return next((call.layer for call in trace.calls[start + 1:] if backend.is_batch_norm(call.layer)
                 and _same_values(calls[-1].output, call.input)), None)


def verify_redundant_bias(subject: Subject) -> Verdict:
    backend, model = subject.backend, subject.model
    producers = [layer for layer in subject.matched if backend.bias(layer) is not None]
    if not producers:
        return Verdict(NOT_REPRODUCED, f"{subject.matched[0].where()} has no bias at runtime.")
    x = subject.batch()
    with subject.preserved():
        trace = backend.trace(model, x, training=True)
    if trace.error:
        return _not_checkable_failure(trace)
    pairs: dict[str, LayerRef] = {}
    for producer in producers:
        norm = _norm_fed_by(trace, producer, backend)
        if norm is None:
            return Verdict(NOT_REPRODUCED, f"The output of {producer.where()} reaches no batch norm unchanged "
                                           "in the forward pass, so its bias is not cancelled.")
        pairs[producer.path] = norm
    rng = np.random.default_rng(subject.seed)
    with subject.preserved():
        before = backend.forward(model, x, training=True)
        for producer in producers:
            backend.set_bias(producer, backend.bias(producer) + rng.standard_normal(backend.bias(producer).shape))
        after = backend.forward(model, x, training=True)
    effect = difference(before, after)
    numbers: dict[str, Any] = {"bias_shift_effect": effect}
    first = producers[0]
    if not close(before, after):
        return Verdict(NOT_REPRODUCED, f"Shifting the bias of {first.where()} changes the train-mode output by "
                                       f"{effect:.3g}: the bias is not cancelled.", numbers)
    verdict = Verdict(CONFIRMED, f"The output of {first.where()} reaches {pairs[first.path].where()} unchanged; "
                                 f"shifting its bias by N(0, 1) changes the train-mode output by {effect:.1e}.",
                      numbers)
    verdict.numbers["migration"] = {f"{path}.bias": f"{norm.path}.{backend.running_mean_name}"
                                    for path, norm in pairs.items()}
    fixed = fixed_model(subject, verdict)
    if fixed is None:
        return verdict
    verdict.fix_verified = _verify_bias_fix(subject, fixed, producers, {p: n.path for p, n in pairs.items()},
                                            verdict.numbers)
    return verdict


def _verify_bias_fix(subject: Subject, fixed: Fixed, producers: list[LayerRef], pairs: dict[str, str],
                     numbers: dict[str, Any]) -> bool:
    """The fixed model computes the same train-mode function with fewer parameters, and a
    checkpoint migrated by folding each bias into the running mean keeps eval outputs."""
    backend, model = subject.backend, subject.model
    x = subject.batch()
    without_bias = all(backend.bias(subject.counterpart(fixed, producer)) is None for producer in producers)
    rng = np.random.default_rng(subject.seed + 1)
    with subject.preserved(), subject.preserved(fixed.model):
        for producer in producers:  # a trained bias is far from zero; make it so
            backend.set_bias(producer, backend.bias(producer) + rng.standard_normal(backend.bias(producer).shape))
        for step in range(_WARMUP_STEPS):
            backend.forward(model, subject.batch(seed=100 + step), training=True)
        dropped = {producer.path for producer in producers}
        with subject.preserved():
            backend.copy_weights(model, fixed.model, dropped)
            train_difference = difference(backend.forward(model, x, True), backend.forward(fixed.model, x, True))
        reference = backend.forward(model, x, training=False)
        backend.copy_weights(model, fixed.model, dropped)
        naive = difference(reference, backend.forward(fixed.model, x, training=False))
        backend.fold_biases(model, fixed.model, pairs)
        migrated_output = backend.forward(fixed.model, x, training=False)
    numbers.update({
        "train_max_difference": train_difference,
        "parameters_before": backend.parameter_count(model),
        "parameters_after": backend.parameter_count(fixed.model),
        "eval_max_difference_migrated": difference(reference, migrated_output),
        "eval_max_difference_bias_dropped": naive,
    })
    tolerance = _RELATIVE_TOLERANCE * (1.0 + float(np.max(np.abs(reference))))
    return (without_bias and train_difference <= tolerance and close(reference, migrated_output)
            and numbers["parameters_after"] < numbers["parameters_before"])


# ----- BN305: dropout before batch norm shifts its input's variance -----------------------


def _mean_channel_variance(array: np.ndarray, channel_axis: int) -> float:
    axes = tuple(axis for axis in range(array.ndim) if axis != channel_axis % array.ndim)
    return float(np.mean(np.var(array, axis=axes)))


def verify_variance_shift(subject: Subject) -> Verdict:
    """In train mode the batch norm sees its producer's (dropout's) output; at inference the
    producer is the identity, so the batch norm sees the producer's input instead."""
    backend = subject.backend
    norms = [layer for layer in subject.matched if backend.is_batch_norm(layer)]
    with subject.preserved():
        trace = backend.trace(subject.model, subject.batch(), training=True)
    if trace.error:
        return _not_checkable_failure(trace)
    call = next((call for norm in norms for call in trace.calls_of(norm)), None)
    if call is None:
        return Verdict(NOT_CHECKABLE, f"The forward pass of {subject.model_name} never calls the batch norm.")
    producer = _producer(trace, call)
    if producer is None:
        return Verdict(NOT_REPRODUCED, f"No layer's output reaches {call.layer.where()} unchanged: nothing "
                                       "between them behaves differently at inference.")
    produced = trace.calls_of(producer)[-1]
    train_variance = _mean_channel_variance(call.input, backend.channel_axis)
    eval_variance = _mean_channel_variance(produced.input, backend.channel_axis)
    ratio = train_variance / eval_variance if eval_variance else float("inf")
    numbers = {"input_variance_train": train_variance, "input_variance_eval": eval_variance, "ratio": ratio}
    plot = Plot("bars", f"Variance of {call.layer.path}'s input", {"train mode": [train_variance],
                                                                  "eval mode": [eval_variance]},
                xlabel="mode", ylabel="mean channel variance (activation units²)",
                caption=(f"What {call.layer.path} receives in training (after {producer.path}) and at inference; "
                         "its running variance is learnt from the left bar and applied to the right."))
    if abs(ratio - 1.0) <= 0.05:
        return Verdict(NOT_REPRODUCED, f"{producer.where()} leaves the variance of what {call.layer.where()} "
                                       f"normalizes unchanged in train mode (ratio {ratio:.3f}).", numbers, plots=[plot])
    return Verdict(CONFIRMED, f"{producer.where()} gives the input of {call.layer.where()} {ratio:.2f}x the "
                              "variance in train mode that it has at inference, so the running variance does not "
                              "fit what it normalizes in eval mode.", numbers, plots=[plot])


# ----- BN306: a momentum in the other framework's convention ----------------------------------


def _momentum_literal(text: str) -> float | None:
    value = text.partition("=")[2].strip() or text
    try:
        return float(value)
    except ValueError:
        return None


def _drift(backend: Backend, norm: Any, batches: list[np.ndarray]) -> tuple[list[float], list[float]]:
    """The running mean (averaged over channels) after each train-mode step, and each batch's mean."""
    running, means = [], []
    for x in batches:
        backend.call_layer(norm, x, training=True)
        running.append(float(np.mean(backend.running_mean(LayerRef("", "", None, norm)))))
        means.append(float(np.mean(x)))
    return running, means


def _calls_of_first(subject: Subject, norms: list[LayerRef]) -> tuple[LayerRef, list[Call]] | Verdict:
    """The first flagged batch norm and its calls in one train-mode forward pass, or why
    there is nothing to measure."""
    if not norms:
        return Verdict(NOT_CHECKABLE, f"No batch norm of {subject.model_name} was built by the flagged code.")
    norm = norms[0]
    with subject.preserved():
        trace = subject.backend.trace(subject.model, subject.batch(), training=True)
    calls = trace.calls_of(norm)
    if not calls:
        return _not_checkable_failure(trace) if trace.error else Verdict(
            NOT_CHECKABLE, f"The forward pass of {subject.model_name} never calls {norm.where()}.")
    return norm, calls


def verify_momentum(subject: Subject) -> Verdict:
    backend = subject.backend
    norms = [layer for layer in subject.matched if backend.is_batch_norm(layer)]
    if not norms:  # a norm factory (functools.partial): the literal names the layers
        literal = _momentum_literal(subject.anchor_text)
        norms = [layer for layer in subject.layers if backend.is_batch_norm(layer)
                 and literal is not None and getattr(layer.handle, "momentum", None) == literal]
    traced = _calls_of_first(subject, norms)
    if isinstance(traced, Verdict):
        return traced
    norm, calls = traced
    full = calls[0].input.shape
    channel_axis = backend.channel_axis % len(full)
    # Statistics are per channel: a few positions per channel show the same update, cheaper.
    shape = tuple(size if axis in (0, channel_axis) else min(size, 4) for axis, size in enumerate(full))
    # Batches as training draws them: around a known true mean, each batch's own mean off by
    # batch-to-batch noise, which the running statistics exist to average away.
    rng = np.random.default_rng(subject.seed)

    def draw() -> np.ndarray:
        return (_TRUE_MEAN + rng.normal(0.0, _BATCH_NOISE) + rng.standard_normal(shape)).astype(np.float32)

    first, first_mean = _drift(backend, backend.fresh_copy(norm), [draw()])
    fraction = first[0] / first_mean[0]  # the running mean starts at 0
    # Long enough for both conventions to settle (the slower one within ~1%), then compare them.
    steps = int(np.clip(np.ceil(6.0 / max(min(fraction, 1.0 - fraction), 1e-6)), _MOMENTUM_STEPS, _MOMENTUM_STEPS_MAX))
    batches = [draw() for _ in range(steps)]
    running, means = _drift(backend, backend.fresh_copy(norm), batches)
    intended = [0.0]
    for mean in means:  # the same batches under the intended convention: weight 1 - fraction
        intended.append(fraction * intended[-1] + (1.0 - fraction) * mean)
    settled = slice(3 * steps // 4, None)  # the last quarter, after both have reached the true mean

    def error(values: list[float]) -> float:
        return float(np.sqrt(np.mean((np.array(values[settled]) - _TRUE_MEAN) ** 2)))

    numbers: dict[str, Any] = {
        "momentum": float(norm.handle.momentum),
        "batch_weight_measured": fraction,
        "batch_weight_intended": 1.0 - fraction,
        "steps": steps,
        "true_mean": _TRUE_MEAN,
        "batch_mean_noise": _BATCH_NOISE,
        "running_mean_error_as_written": error(running),
        "running_mean_error_intended": error(intended[1:]),
    }
    plot = Plot("lines", f"Running mean of {norm.path}, averaged over channels",
                {"true mean": [_TRUE_MEAN] * steps, "batch means": means,
                 f"running mean, momentum={numbers['momentum']:g} (as written)": running,
                 f"running mean, batch weight {1 - fraction:.2g} (intended)": intended[1:]},
                xlabel="training step", ylabel="mean (activation units)", points=("batch means",),
                reference="true mean",
                caption=(f"{steps} batches drawn around a true mean of {_TRUE_MEAN:g} with batch-to-batch noise "
                         f"(sd {_BATCH_NOISE:g}); over the last {steps - 3 * steps // 4} steps the "
                         f"estimate as written is off by {numbers['running_mean_error_as_written']:.2f} (rms), "
                         f"the intended one by {numbers['running_mean_error_intended']:.2f}."))
    if fraction <= 0.5:
        return Verdict(NOT_REPRODUCED, f"Each update of {norm.where()} gives the current batch a weight of "
                                       f"{fraction:.3g}, as the framework's convention intends.", numbers, plots=[plot])
    verdict = Verdict(CONFIRMED, f"Each update of {norm.where()} gives the current batch a weight of {fraction:.3g} "
                                 "(the other framework's convention): the running statistics follow the last few "
                                 f"batches instead of averaging over ~{1 / max(1 - fraction, 1e-9):.0f} of them.",
                      numbers, plots=[plot])
    fixed = fixed_model(subject, verdict)
    if fixed is None:
        return verdict
    fixed_running, _ = _drift(backend, backend.fresh_copy(subject.counterpart(fixed, norm)), batches)
    fixed_fraction = fixed_running[0] / means[0]
    verdict.numbers["batch_weight_after_fix"] = fixed_fraction
    verdict.fix_verified = abs(fixed_fraction - (1.0 - fraction)) < 1e-3
    return verdict


# ----- BN307: an eps far too large to be an epsilon -------------------------------------------


def _eps_parameter(norm: Any) -> str:
    return "epsilon" if hasattr(norm, "epsilon") else "eps"  # Keras' name, else torch's


def _default_eps(norm: Any) -> float | None:
    """The eps the layer's class uses when none is given, read from its signature."""
    parameter = inspect.signature(type(norm)).parameters.get(_eps_parameter(norm))
    default = parameter.default if parameter is not None else None
    return float(default) if isinstance(default, (int, float)) else None


def _normalized_variance(x: np.ndarray, eps: float, channel_axis: int) -> float:
    """The mean per-channel variance of `(x - mean) / sqrt(var + eps)`: 1 when eps is negligible."""
    axes = tuple(axis for axis in range(x.ndim) if axis != channel_axis % x.ndim)
    variance = np.var(x.astype(np.float64), axis=axes)
    return float(np.mean(variance / (variance + eps)))


def verify_eps(subject: Subject) -> Verdict:
    backend = subject.backend
    norms = [layer for layer in subject.matched if backend.is_batch_norm(layer)]
    traced = _calls_of_first(subject, norms)
    if isinstance(traced, Verdict):
        return traced
    norm, calls = traced
    eps, default = float(getattr(norm.handle, _eps_parameter(norm.handle))), _default_eps(norm.handle)
    if default is None:
        return Verdict(NOT_CHECKABLE, f"The default eps of {type(norm.handle).__name__} is unknown.")
    x = calls[0].input
    written = _normalized_variance(x, eps, backend.channel_axis)
    intended = _normalized_variance(x, default, backend.channel_axis)
    numbers: dict[str, Any] = {"eps": eps, "default_eps": default, "output_variance": written,
                               "output_variance_default_eps": intended}
    plot = Plot("bars", f"Variance of {norm.path}'s normalized output", {f"eps={eps:g}": [written],
                                                                         f"eps={default:g} (default)": [intended]},
                ylabel="variance")
    said = (f"normalizing the input of {norm.where()} with eps={eps:g} leaves a variance of {written:.2f}, "
            f"against {intended:.2f} with the default eps={default:g}")
    if written >= 0.9 * intended:
        return Verdict(NOT_REPRODUCED, f"On this input {said}: the input's variance dwarfs the eps.", numbers,
                       plots=[plot])
    verdict = Verdict(CONFIRMED, f"{said[0].upper()}{said[1:]}: the layer barely normalizes.", numbers, plots=[plot])
    fixed = fixed_model(subject, verdict)
    if fixed is None:
        return verdict
    fixed_norm = subject.counterpart(fixed, norm).handle
    after = _normalized_variance(x, float(getattr(fixed_norm, _eps_parameter(fixed_norm))), backend.channel_axis)
    verdict.numbers["output_variance_after_fix"] = after
    verdict.fix_verified = after >= 0.99 * intended
    return verdict


# ----- BN201: a training batch of one ----------------------------------------------------------


def batch_norm_layers(subject: Subject) -> list[LayerRef]:
    return [layer for layer in subject.layers if subject.backend.is_batch_norm(layer)]


def _collapsed(subject: Subject, call: Call) -> bool:
    """The batch norm output its beta: a batch of one has nothing to normalize against."""
    beta = subject.backend.beta(call.layer)
    shape = [1] * call.output.ndim
    shape[subject.backend.channel_axis] = beta.size
    return call.output.shape[subject.backend.channel_axis] == beta.size and close(
        np.broadcast_to(beta.reshape(shape), call.output.shape), call.output)


def verify_batch_of_one(subject: Subject) -> Verdict:
    norms = batch_norm_layers(subject)
    with subject.preserved():
        single = subject.backend.trace(subject.model, subject.batch(1), training=True)
        pair = subject.backend.trace(subject.model, subject.batch(2), training=True)
    remedy_runs = pair.error is None and not any(_collapsed(subject, call) for call in pair.calls
                                                 if call.layer in norms and call.output is not None)
    numbers: dict[str, Any] = {"batch_size": 1, "remedy_batch_size": 2, "remedy_runs": remedy_runs}
    fix = None if subject.diagnostic.fix is None else remedy_runs
    if _is_failure_in(single, norms):
        return Verdict(CONFIRMED, f"A training-mode forward with a batch of one raises in {single.failed_in.where()}: "
                                  f"{describe(single.error)}.", numbers, fix)
    if single.error:
        return _not_checkable_failure(single)
    calls = [call for call in single.calls if call.layer in norms and call.output is not None]
    if not calls:
        return Verdict(NOT_REPRODUCED, f"The forward pass of {subject.model_name} runs no batch norm.", numbers, fix)
    collapsed = [call for call in calls if _collapsed(subject, call)]
    if collapsed:
        return Verdict(CONFIRMED, f"With a batch of one, {collapsed[0].layer.where()} outputs its beta whatever "
                                  "the input: the sample is normalized against itself.", numbers, fix)
    return Verdict(CONFIRMED, f"With a batch of one, {calls[0].layer.where()} normalizes the sample with its own "
                              "statistics (instance normalization), not the batch's.", numbers, fix)


# ----- BN101 / BN103 / BN107: batch norm in train mode where eval mode was meant --------------


_BATCHES = 6


def verify_batch_dependence(subject: Subject) -> Verdict:
    """In train mode a sample's output depends on the other samples of its batch; in eval
    mode (the fix: .eval() / training=False) it does not."""
    backend = subject.backend
    if not batch_norm_layers(subject):
        return Verdict(NOT_REPRODUCED, f"{subject.model_name} contains no batch norm.")
    size = max(subject.inputs.shape[0], 2)
    sample = subject.batch(1, seed=1)
    batches = [sample.joined(subject.batch(size - 1, seed=10 + index)) for index in range(_BATCHES)]
    outputs: dict[bool, list[np.ndarray]] = {}
    with subject.preserved():
        for training in (True, False):
            outputs[training] = [backend.forward(subject.model, batch, training)[0] for batch in batches]
        repeat = backend.forward(subject.model, batches[0], training=True)[0]
        moved = {training: _running_mean_step(subject, batches[1], training) for training in (True, False)}
    noise = difference(outputs[True][0], repeat)  # dropout and the like, not the batch
    spread = {training: max(difference(outputs[training][0], out) for out in outputs[training])
              for training in (True, False)}
    numbers = {"batches": _BATCHES, "spread_train": spread[True], "spread_eval": spread[False],
               "same_batch_noise_train": noise, "running_mean_step_train": moved[True],
               "running_mean_step_eval": moved[False]}
    plot = Plot("strip", f"One sample's first output in {_BATCHES} different batches",
                {"train mode": [float(out.flat[0]) for out in outputs[True]],
                 "eval mode": [float(out.flat[0]) for out in outputs[False]]},
                xlabel="mode", ylabel="first output value (model output units)",
                caption=("The same sample in batches with different companions: in train mode its prediction moves "
                         "with them, in eval mode the points coincide."))
    tolerance = _RELATIVE_TOLERANCE * (1.0 + float(np.max(np.abs(outputs[False][0]))))
    if subject.diagnostic.code == "BN103":  # the fix is .train(): batch statistics, and their updates, come back
        fixed = moved[True] > 0.0 and moved[False] == 0.0
        consequence = (f"left in eval mode, a training step moves the running mean by {moved[False]:.1e}; "
                       f"after .train() by {moved[True]:.3g}")
    else:
        fixed = spread[False] <= tolerance
        switch = "training=False" if subject.diagnostic.code == "BN107" else ".eval()"
        consequence = f"predictions at inference depend on the batch, and {switch} removes it"
    if spread[True] <= 2 * noise + tolerance:
        return Verdict(NOT_REPRODUCED, f"In train mode the output of one sample does not depend on its batch "
                                       f"(spread {spread[True]:.1e}).", numbers, fixed, [plot])
    return Verdict(CONFIRMED, f"In train mode one sample's output changes by up to {spread[True]:.3g} with the other "
                              f"samples of its batch, in eval mode by {spread[False]:.1e}: {consequence}.",
                   numbers, fixed, [plot])


def _running_mean_step(subject: Subject, batch: np.ndarray, training: bool) -> float:
    """How far one forward pass in this mode moves the first batch norm's running mean."""
    norm = batch_norm_layers(subject)[0]
    before = subject.backend.running_mean(norm)
    subject.backend.forward(subject.model, batch, training)
    return difference(before, subject.backend.running_mean(norm))


# ----- BN301: one batch norm across the steps of a recurrence --------------------------------


_TIME_STEPS = 8


def _drifting(x: np.ndarray, steps: int, axis: int | None) -> np.ndarray:
    """Float inputs whose distribution changes from step to step, as real sequences' do
    (along `axis`, or the whole array for step number `steps` of a cell's drive)."""
    if np.issubdtype(x.dtype, np.integer):
        return x
    shifts, scales = np.linspace(-1.5, 1.5, _TIME_STEPS), np.linspace(0.5, 2.0, _TIME_STEPS)
    if axis is None:
        return (shifts[steps] + scales[steps] * x).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    index = np.arange(x.shape[axis]) % _TIME_STEPS
    return (shifts[index].reshape(shape) + scales[index].reshape(shape) * x).astype(np.float32)


def _recurrent_calls(subject: Subject) -> tuple[list[Call], Trace | None, str]:
    """Every batch-norm call over one sequence: a cell (a model with a state argument) is
    driven over the time steps by bnlint, a sequence model runs them itself (time on axis 1)."""
    backend, inputs = subject.backend, subject.inputs
    with subject.preserved():
        if inputs.cell:
            base = subject.batch()
            calls: list[Call] = []
            for step in range(_TIME_STEPS):
                args = (_drifting(base.args[0], step, None), *base.args[1:])
                trace = backend.trace(subject.model, Batch(args, base.kwargs), training=True)
                if trace.error:
                    return calls, trace, ""
                calls += trace.calls
            return calls, None, f"while bnlint drives the cell over {_TIME_STEPS} time steps"
        batch = subject.batch()
        first = batch.args[0]
        if isinstance(first, np.ndarray) and first.ndim >= 3:
            batch = Batch((_drifting(first, 0, 1), *batch.args[1:]), batch.kwargs)
        trace = backend.trace(subject.model, batch, training=True)
        return trace.calls, trace if trace.error else None, "in one forward pass"


def _flagged_norms(subject: Subject) -> list[LayerRef]:
    """The batch norms the finding is about: built by the flagged call (or inside the container
    it builds), or named by a call in the flagged code (`self.bn(...)`, `self.bns[t](...)` in a time loop)."""
    d = subject.diagnostic
    built = [layer for layer in batch_norm_layers(subject) if layer in subject.matched or (
        layer.site is not None and layer.site.path == str(Path(d.path).absolute())
        and (d.line, d.column) <= (layer.site.line, layer.site.column) <= (d.end_line, d.end_column))]
    if built:
        return built
    called = set(re.findall(r"(?:self\.)?([\w.]+)\s*(?:\[[^\]]*\])?\s*\(", subject.anchor_text))
    return [layer for layer in batch_norm_layers(subject)
            if any(re.search(rf"(^|\.){re.escape(name)}(\.\d+)?$", layer.path) for name in called)]


def verify_recurrence(subject: Subject) -> Verdict:
    backend = subject.backend
    norms = _flagged_norms(subject)
    if not norms:
        return Verdict(NOT_CHECKABLE, f"No batch norm of {subject.model_name} was built or called by the flagged code.")
    all_calls, failed, how = _recurrent_calls(subject)
    if failed is not None:
        return _not_checkable_failure(failed)
    counts = {norm: sum(call.layer == norm for call in all_calls) for norm in norms}
    norm = max(norms, key=lambda layer: counts[layer], default=None)
    if norm is None or counts[norm] <= 1:
        return Verdict(NOT_REPRODUCED, f"Each batch norm runs at most once {how}: every step has its own.",
                       {"calls_per_sequence": counts[norm] if norm else 0})
    calls = [call for call in all_calls if call.layer == norm]
    axis = backend.channel_axis % calls[0].input.ndim
    per_step = [np.moveaxis(call.input, axis, -1).reshape(-1, call.input.shape[axis]) for call in calls]
    pooled = np.concatenate(per_step)
    pooled_mean, pooled_std = pooled.mean(axis=0), pooled.std(axis=0) + 1e-12
    # In eval mode the shared running statistics (which converge to the pooled ones) normalize
    # every step: step t comes out off-centre by its own mean's distance from the pooled mean.
    offsets = [float(np.mean(np.abs(step.mean(axis=0) - pooled_mean) / pooled_std)) for step in per_step]
    means = np.array([step.mean(axis=0) for step in per_step])
    channel = int(np.argmax(means.std(axis=0)))  # the channel whose statistics move most, to plot
    step_means = [float(value) for value in means[:, channel]]
    replacement = backend.layer_norm_like(norm, calls[0])
    try:
        with subject.preserved(), backend.replaced(subject.model, norm, replacement):
            backend.forward(subject.model, subject.batch(), training=True)
        alternative, layer_norm_runs = "a LayerNorm in its place runs", True
    except Exception as error:  # noqa: BLE001 - the user's forward decides whether it runs
        alternative, layer_norm_runs = f"a LayerNorm in its place fails ({describe(error)})", False
    numbers = {"calls_per_sequence": len(calls), "plotted_channel": channel, "step_input_means": step_means,
               "pooled_input_mean": float(pooled_mean[channel]), "eval_offset_per_step": offsets,
               "largest_eval_offset": max(offsets), "layer_norm_runs": layer_norm_runs}
    own, pooled = "this step's batch mean (what training normalizes by)", "pooled mean (what the running mean holds)"
    plot = Plot("lines", f"Channel {channel} of {norm.path}'s input at each time step",
                {own: step_means, pooled: [numbers["pooled_input_mean"]] * len(calls)},
                xlabel="call of the batch norm (time step)", ylabel="mean input (activation units)",
                points=(own,), reference=pooled,
                caption=(f"One time step's batch mean of channel {channel} of {norm.path}'s input per point; one set "
                         "of running statistics can only hold the flat line, so eval mode normalizes every step by it."))
    return Verdict(CONFIRMED, f"{norm.where()} runs {len(calls)} times {how}, so one set of statistics serves "
                              f"every time step: the steps' means lie up to {max(offsets):.2f} standard deviations "
                              "from the pooled mean that eval mode normalizes them all by, where training used each "
                              f"step's own; {alternative}.", numbers, plots=[plot])
