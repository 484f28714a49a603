"""The worker process: the only place where the user's code runs.

`python -m bnlint.runtime.worker REQUEST RESULT` reads a JSON request (files, their findings,
options) written by `bnlint.runtime.isolation`, loads the models with the real frameworks,
runs one verifier per finding and writes the verdicts as JSON. A failure of the user's code
is written as an error (message and the user's frame); the parent turns it into exit 2."""

from __future__ import annotations

import inspect
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bnlint.diagnostics import Applicability, Diagnostic, Edit, Fix, Severity
from bnlint.fixes import FixRefused, apply_edits
from bnlint.runtime.backend import Backend, LayerRef, Trace
from bnlint.runtime.inputs import Inputs
from bnlint.runtime.isolation import limit_memory
from bnlint.runtime.loader import (Candidate, SiteRecorder, UserCodeError, build, candidates, describe,
                                   how_to_give_inputs, load_module, load_notebook, model_inputs, named_candidate,
                                   user_frame)
from bnlint.runtime.verdicts import NOT_CHECKABLE, Fixed, Subject, Verdict
from bnlint.runtime.verifiers import VERIFIERS

_SHAPE_RULES = ("BN302", "BN303")  # their confirmation is a forward pass that fails
_IMPORTS = {"torch": re.compile(r"^\s*(import|from)\s+torch\b", re.M),
            "keras": re.compile(r"^\s*(import|from)\s+(keras|tensorflow|tf_keras)\b", re.M)}


def diagnostic_from_json(data: dict[str, Any]) -> Diagnostic:
    fix = data.get("fix")
    return Diagnostic(
        data["path"], data["line"], data["column"], data["end_line"], data["end_column"], data["code"], data["rule"],
        Severity(data["severity"]), data["message"],
        None if fix is None else Fix(Applicability(fix["applicability"]), fix["message"],
                                     tuple(Edit(**edit) for edit in fix["edits"])),
    )


@dataclass
class Loaded:
    """One model built from one file's text (the original, or with some fixes applied)."""

    candidate: Candidate
    model: Any
    backend: Backend
    layers: list[LayerRef]
    inputs: Inputs
    path: Path  # the file whose text built it
    text: str
    applied: list[Diagnostic] = field(default_factory=list)  # fixes in `text`
    failure: tuple[LayerRef | None, BaseException] | None = None  # where its forward pass fails


class Worker:
    def __init__(self, request: dict[str, Any]) -> None:
        self.request = request
        self.user_files = {entry["path"] for entry in request["files"]}
        self.recorder = SiteRecorder(self.user_files)
        self.backends: dict[str, Backend] = {}
        self.progress = Path(request["progress"])
        self.modules_loaded = 0
        self.unchecked: list[str] = []  # why discovered models of the current file were left out

    def stage(self, text: str) -> None:
        self.progress.write_text(text, encoding="utf-8")

    # --- frameworks ---

    def _frameworks(self, text: str) -> list[str]:
        wanted = [name for name, pattern in _IMPORTS.items() if pattern.search(text)]
        chosen = self.request.get("framework")
        return [name for name in wanted if chosen in (None, name)]

    def _start(self, framework: str) -> None:
        if framework in self.backends:
            return
        self.stage(f"importing {framework}")
        device = self.request["device"]
        if framework == "torch":
            import torch

            from bnlint.runtime.torch_backend import TorchBackend

            if device == "cuda" and not torch.cuda.is_available():
                raise UserCodeError("--device cuda: PyTorch sees no CUDA device")
            torch.manual_seed(self.request["seed"])
            torch.set_num_threads(1)  # small models: threads cost far more than they save on a shared machine
            self.recorder.install(torch.nn.Module)
            self.backends[framework] = TorchBackend(device, self.recorder.sites, self.request["seed"])
        else:
            import keras
            import tensorflow as tf

            from bnlint.runtime.keras_backend import KerasBackend

            keras.utils.set_random_seed(self.request["seed"])
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            self.recorder.install(keras.layers.Layer)
            try:
                self.backends[framework] = KerasBackend(device, self.recorder.sites, self.request["seed"])
            except RuntimeError as error:
                raise UserCodeError(str(error)) from None

    def _backend_of(self, model: Any) -> Backend | None:
        return next((backend for backend in self.backends.values() if backend.is_model(model)), None)

    def _is_model_class(self, value: type) -> bool:
        bases = []
        if "torch" in self.backends:
            import torch

            bases.append(torch.nn.Module)
        if "keras" in self.backends:
            import keras

            bases.append(keras.layers.Layer)  # a model, or an RNN cell (the backend takes no other layer)
        return issubclass(value, tuple(bases)) if bases else False

    # --- loading ---

    def _module(self, path: Path, text: str) -> Any:
        self.modules_loaded += 1
        name = path.stem if self.modules_loaded == 1 else f"{path.stem}__bnlint_{self.modules_loaded}"
        entry = next(entry for entry in self.request["files"] if entry["path"] == str(path))
        if not entry.get("notebook"):
            return load_module(path, text, name, self.user_files)
        # A notebook runs up to the cell of its last layer finding, then until a model is defined.
        needed = max((item["line"] for item in entry["diagnostics"] if item["code"] in VERIFIERS
                      and VERIFIERS[item["code"]].anchored_on_layer), default=0)
        spec = self.request.get("model")
        ready = (lambda module: hasattr(module, spec.rpartition(":")[2])) if spec else (
            lambda module: bool(self._candidates(module)))
        return load_notebook(path, text, name, self.user_files, needed, ready)

    def _candidates(self, module: Any) -> list[Candidate]:
        spec = self.request.get("model")
        is_model = lambda value: self._backend_of(value) is not None  # noqa: E731
        if spec:
            return [named_candidate(module, spec.rpartition(":")[2], is_model)]
        return candidates(module, is_model, self._is_model_class)

    def _build(self, candidate: Candidate, module: Any, path: Path, text: str,
               applied: list[Diagnostic]) -> Loaded | None:
        self.stage(f"building {candidate.name}")
        model = build(candidate, module, self.user_files)
        backend = self._backend_of(model)
        if backend is None:
            if self.request.get("model"):
                raise UserCodeError(f"--model: {candidate.name} returned {type(model).__name__}, not a model")
            return None
        model = backend.prepare(model)
        try:
            guesses = model_inputs(model, module, backend, self.request.get("inputs"), self.request.get("configured"),
                                   candidate, self.user_files)
        except UserCodeError as error:
            if self.request.get("model"):
                raise
            self.unchecked.append(str(error))  # a discovered model: its findings say why they were not checked
            return None
        # The first guess that runs (or fails only in a batch norm: BN302/BN303's evidence) wins;
        # when none does, the first one's failure is reported.
        chosen: tuple[Inputs, Trace] | None = None
        for inputs in guesses:
            self.stage(f"running {candidate.name} on inputs {inputs.describe()}")
            trace = backend.trace(model, inputs.batch(seed=self.request["seed"]), training=False)  # builds Keras models
            chosen = chosen or (inputs, trace)
            if trace.error is None or (trace.failed_in is not None and backend.is_batch_norm(trace.failed_in)):
                chosen = (inputs, trace)
                break
        assert chosen is not None
        inputs, trace = chosen
        loaded = Loaded(candidate, model, backend, backend.layers(model), inputs, path, text, applied)
        if trace.error is not None:
            loaded.failure = (trace.failed_in, trace.error)
        # A batch norm that does not fit is what BN302/BN303 are about (and makes other findings
        # not checkable); failing anywhere else means the inputs do not fit. Inputs the user gave,
        # or a model the user named, make that an error; for a discovered model bnlint guessed
        # the inputs of, its findings say why it was left out.
        if trace.error is not None and (trace.failed_in is None or not backend.is_batch_norm(trace.failed_in)):
            error = UserCodeError(self._misfit(loaded, trace.error, trace.failed_in),
                                  user_frame(trace.error, self.user_files))
            if self.request.get("model") or not inputs.inferred:
                raise error
            self.unchecked.append(str(error))
            return None
        return loaded

    def _misfit(self, loaded: Loaded, error: BaseException, where: LayerRef | None = None) -> str:
        place = f" in {where.where()}" if where else ""
        return (f"the inputs {loaded.inputs.describe()} ({loaded.inputs.source}) do not fit {loaded.candidate.name}: "
                f"{describe(error)}{place}; {how_to_give_inputs(loaded.backend, loaded.model)}")

    def _load_file(self, path: Path, text: str) -> list[Loaded]:
        self.unchecked = []
        for framework in self._frameworks(text):
            self._start(framework)
        self.stage(f"importing {path}")
        module = self._module(path, text)
        chosen = self.request.get("framework")
        for framework in _IMPORTS:  # imported through another module (a library's model, a factory file)
            if framework in sys.modules and chosen in (None, framework):
                self._start(framework)
        models: list[Loaded] = []
        for candidate in self._candidates(module):
            loaded = self._build(candidate, module, path, text, [])
            if loaded is None:
                continue
            models.append(loaded)
        return models

    def _with_fixes(self, base: Loaded, fixes: list[Diagnostic]) -> Loaded:
        """The model rebuilt from its text with `fixes` (bnlint's own edits) applied too."""
        path = base.path
        if any(Path(fix.path).absolute() != path for fix in fixes):
            raise ValueError("the fix is in another file than the model's factory")
        applied = [*base.applied, *fixes]
        try:
            text, count = apply_edits(self._original(path), applied)
        except FixRefused as refusal:
            raise ValueError(f"the fix does not apply cleanly to the source: {refusal}") from None
        if count != len(applied):
            raise ValueError("the fix does not apply cleanly to the source")
        try:
            self.stage(f"importing {path} with the fix at line {fixes[-1].line}")
            loaded = self._build(base.candidate, self._module(path, text), path, text, applied)
        except UserCodeError as error:
            raise ValueError(f"the fixed source does not build: {error}") from None
        if loaded is None or len(loaded.layers) != len(base.layers):
            raise ValueError("the fixed source builds a model with other layers")
        return loaded

    def _original(self, path: Path) -> str:
        return next(entry["text"] for entry in self.request["files"] if entry["path"] == str(path))

    # --- verifying ---

    def run(self) -> dict[str, Any]:
        verdicts: dict[str, Any] = {}
        checkable: dict[str, dict[str, Diagnostic]] = {}
        for entry in self.request["files"]:
            checkable[entry["path"]] = {}
            for item in entry["diagnostics"]:
                diagnostic = diagnostic_from_json(item)
                if diagnostic.code in VERIFIERS:
                    checkable[entry["path"]][item["id"]] = diagnostic
                else:
                    verdicts[item["id"]] = self._verdict(
                        Verdict(NOT_CHECKABLE, f"bnlint has no runtime check for {diagnostic.code}."), None)
        models: list[dict[str, Any]] = []
        # --model: one model, from its file, for the findings of every file.
        shared = self._models(self.request["model_path"], checkable, models) if self.request.get("model") else None
        for entry in self.request["files"]:
            if not checkable[entry["path"]]:
                continue
            loaded, repaired = shared or self._models(entry["path"], checkable, models)
            for key, diagnostic in checkable[entry["path"]].items():
                self.stage(f"verifying {diagnostic.code} at {entry['display']}:{diagnostic.line}")
                verdicts[key] = self._verify(Path(entry["path"]), diagnostic, loaded, repaired)
        return {"error": None, "verdicts": verdicts, "models": models}

    def _models(self, path: str, checkable: dict[str, dict[str, Diagnostic]],
                shown: list[dict[str, Any]]) -> tuple[list[Loaded], dict[int, Loaded]]:
        """The models a file builds, and their repaired versions (see `_repaired`)."""
        entry = next(entry for entry in self.request["files"] if entry["path"] == path)
        diagnostics = list(checkable[path].values())
        loaded = self._load_file(Path(path), entry["text"])
        shown += [{"path": entry["display"], "name": item.candidate.name, "framework": item.backend.name,
                   "input_shape": list(item.inputs.shape), "inputs": item.inputs.describe(),
                   "input_source": item.inputs.source} for item in loaded]
        return loaded, self._repaired(loaded, diagnostics)

    def _repaired(self, models: list[Loaded], diagnostics: list[Diagnostic]) -> dict[int, Loaded]:
        """For a model whose forward pass fails in a batch norm that a BN302/BN303 fix
        mends, the model with those fixes: the other findings are checked on it."""
        repaired: dict[int, Loaded] = {}
        for index, loaded in enumerate(models):
            if loaded.failure is None:
                continue
            fixes = [d for d in diagnostics if d.code in _SHAPE_RULES and d.fix is not None]
            try:
                candidate = self._with_fixes(loaded, fixes) if fixes else None
            except ValueError:
                continue
            if candidate is not None and candidate.failure is None:
                repaired[index] = candidate
        return repaired

    def _verify(self, path: Path, diagnostic: Diagnostic, models: list[Loaded], repaired: dict[int, Loaded]) -> Any:
        verifier = VERIFIERS[diagnostic.code]
        choices = []
        for index, original in enumerate(models):
            loaded = original if diagnostic.code in _SHAPE_RULES else repaired.get(index, original)
            if loaded.backend.name not in verifier.frameworks:
                continue
            matched = _matched(diagnostic, loaded.layers, str(path)) if verifier.anchored_on_layer else [
                layer for layer in loaded.layers if loaded.backend.is_batch_norm(layer)]
            choices.append((loaded, matched))
        named = re.findall(r"`([\w.]+)`", diagnostic.message)  # `SegHead` is trained on batches of 2...
        choices.sort(key=lambda choice: not any(name.rpartition(".")[2] in (choice[0].candidate.attribute,
                                                                             type(choice[0].model).__name__)
                                                for name in named))
        chosen = next(((loaded, matched) for loaded, matched in choices if matched), None)
        # Model-level rules run on any model; verifiers that find their layers themselves (a time
        # loop's call, a norm factory's layers) on a model whose code holds the finding, else the first.
        if chosen is None and choices and (not verifier.anchored_on_layer or verifier.finds_its_layers):
            holding = [(loaded, matched) for loaded, matched in choices
                       if any(loaded.backend.is_batch_norm(layer) for layer in loaded.layers)
                       and _code_holds(loaded, str(path), diagnostic.line)]
            chosen = holding[0] if holding else choices[0]
        if chosen is None:
            if choices:
                reason = "No model built from this file constructs the flagged layer"
            elif self.unchecked:
                reason = "No model of this file could be checked: " + "; ".join(self.unchecked)
            else:
                reason = "No model of a framework this rule applies to could be built from this file"
            return self._verdict(Verdict(NOT_CHECKABLE, f"{reason}; name one with --model module:factory."), None)
        loaded, matched = chosen
        subject = Subject(diagnostic, loaded.backend, loaded.candidate.name, loaded.model, loaded.layers, matched,
                          loaded.inputs, self.request["seed"], lambda: self._fixed(loaded, diagnostic),
                          _anchor_text(self._original(path), diagnostic))
        try:
            verdict = verifier.run(subject)
        except Exception as error:  # noqa: BLE001 - the user's model may fail an experiment in any way
            verdict = Verdict(NOT_CHECKABLE, f"The experiment failed: {describe(error)}.")
        if loaded.applied:
            lines = ", ".join(f"{d.code} at line {d.line}" for d in loaded.applied)
            verdict.evidence = f"{verdict.evidence.rstrip('.')} (checked with the fix for {lines} applied)."
        return self._verdict(verdict, loaded.candidate.name)

    def _fixed(self, base: Loaded, diagnostic: Diagnostic) -> Fixed:
        if diagnostic.fix is None:
            raise ValueError("the finding has no fix")
        loaded = self._with_fixes(base, [diagnostic])
        return Fixed(loaded.model, loaded.layers)

    @staticmethod
    def _verdict(verdict: Verdict, model: str | None) -> dict[str, Any]:
        return {**verdict.to_json(), "plots": [asdict(plot) for plot in verdict.plots], "model": model}


def _matched(diagnostic: Diagnostic, layers: list[LayerRef], path: str) -> list[LayerRef]:
    """The layers constructed by the innermost call that holds the finding's anchor."""
    holding = [layer for layer in layers if layer.site is not None and layer.site.path == path
               and layer.site.contains(diagnostic.line, diagnostic.column)]
    if not holding:
        return []
    innermost = min(layer.site.size for layer in holding if layer.site is not None)
    return [layer for layer in holding if layer.site is not None and layer.site.size == innermost]


def _code_holds(loaded: Loaded, path: str, line: int) -> bool:
    """Whether the class of the model or of one of its layers is written around `line` of `path`."""
    for kind in {type(loaded.model), *(type(layer.handle) for layer in loaded.layers)}:
        try:
            if inspect.getsourcefile(kind) != path:
                continue
            lines, start = inspect.getsourcelines(kind)
        except (OSError, TypeError):
            continue
        if start <= line < start + len(lines):
            return True
    return False


def _anchor_text(text: str, diagnostic: Diagnostic) -> str:
    lines = text.splitlines()
    if diagnostic.line > len(lines) or diagnostic.line != diagnostic.end_line:
        return ""
    return lines[diagnostic.line - 1][diagnostic.column - 1: diagnostic.end_column - 1]


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def main(argv: list[str]) -> int:
    request_path, result_path = Path(argv[0]), Path(argv[1])
    request = json.loads(request_path.read_text(encoding="utf-8"))
    limit_memory(request.get("memory_limit_mib"))
    worker = Worker(request)
    try:
        result = worker.run()
    except UserCodeError as error:
        result = {"error": {"message": str(error), "frame": error.frame}}
    result_path.write_text(json.dumps(result, default=_json_default, allow_nan=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
