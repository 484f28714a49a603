"""Loading the user's models in the worker process: import a file (its original or a fixed
text), remember where each layer was constructed, find the models and their input shape.

Every failure of the user's code becomes a `UserCodeError` carrying one message and the
user's innermost traceback frame; the CLI prints both and exits 2."""

from __future__ import annotations

import inspect
import re
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bnlint.files import notebook_cells
from bnlint.runtime.backend import Backend, Site
from bnlint.runtime.inputs import Inputs, inputs_from_specs, inputs_from_value, with_vocabulary

# Zero-argument functions worth calling to get a model, and names that say they do
# something else (train, evaluate, load data...): discovery must not run a training loop.
_FACTORY_NAME = re.compile(r"build|make|create|\w*(model|net|classifier|backbone|encoder|decoder|head)\w*", re.I)
_NOT_A_FACTORY = re.compile(r"train|fit|eval|test|predict|infer|main|run|download|load|save|export", re.I)
DEFAULT_BATCH = 8


class UserCodeError(Exception):
    """The user's code could not be imported, built or run: `frame` is `file:line: code`."""

    def __init__(self, message: str, frame: str | None = None) -> None:
        super().__init__(message)
        self.frame = frame


def user_frame(error: BaseException, user_files: set[str]) -> str | None:
    """`path:line: source` of the innermost traceback frame in the user's files."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename in user_files]
    if not frames:
        return None
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno}: {(frame.line or '').strip()}"


def describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


# ----- construction sites --------------------------------------------------------------------


class SiteRecorder:
    """Wraps the frameworks' base layer `__init__` so that every layer remembers the call in
    the user's files that constructed it (innermost user frame that is not the layer's own
    `__init__` chain). bnlint's findings are anchored on those calls."""

    def __init__(self, user_files: set[str]) -> None:
        self.user_files = user_files
        self.sites: dict[int, Site] = {}
        self._alive: list[Any] = []  # ids stay unique while the layers live

    def install(self, base: type) -> None:
        original = base.__init__
        recorder = self

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            site = recorder._site_of(self)
            if site is not None and id(self) not in recorder.sites:
                recorder.sites[id(self)] = site
                recorder._alive.append(self)
            original(self, *args, **kwargs)

        base.__init__ = __init__  # type: ignore[method-assign]

    def _site_of(self, layer: Any) -> Site | None:
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename in self.user_files and frame.f_locals.get("self") is not layer:
                positions = list(frame.f_code.co_positions())[frame.f_lasti // 2]
                line, end_line, column, end_column = positions
                if line is None:
                    return None
                return Site(frame.f_code.co_filename, line, (column or 0) + 1, end_line or line, (end_column or 0) + 1)
            frame = frame.f_back
        return None


# ----- modules -------------------------------------------------------------------------------


def load_module(path: Path, text: str, name: str, user_files: set[str]) -> types.ModuleType:
    """Execute `text` as the module `name` with `path` as its file name (so that tracebacks
    and construction sites point into the user's file); its folder is importable, and in a
    package (a library's `timm/models/resnet.py`) its relative imports work."""
    module = types.ModuleType(name)
    module.__file__ = str(path)
    package, root = _package_of(path)
    module.__package__ = package
    for folder in (str(path.parent), str(root)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        exec(compile(text, str(path), "exec"), module.__dict__)  # noqa: S102 - running user code is this mode's job
    except BaseException as error:
        del sys.modules[name]
        if isinstance(error, KeyboardInterrupt):
            raise
        raise UserCodeError(f"cannot import {path}: {describe(error)}", user_frame(error, user_files)) from None
    return module


def load_notebook(path: Path, text: str, name: str, user_files: set[str], needed_line: int,
                  ready: Callable[[types.ModuleType], bool]) -> types.ModuleType:
    """Run a notebook's code cells (its linted `text`) in order, as one module, up to the cell
    holding `needed_line` and then until `ready(module)` (the model is defined): the cells
    that train or evaluate afterwards do not run. Line numbers stay those of `text`."""
    module = load_module(path, "", name, user_files)
    for first_line, source in notebook_cells(text):
        if first_line > needed_line and ready(module):
            break
        try:  # noqa: S102 below - running the user's cells is what --notebook-cells asks for
            exec(compile("\n" * (first_line - 1) + source, str(path), "exec"), module.__dict__)  # noqa: S102
        except Exception as error:  # noqa: BLE001 - a cell may raise anything
            raise UserCodeError(f"cannot run {path}: {describe(error)}", user_frame(error, user_files)) from None
    return module


def _package_of(path: Path) -> tuple[str, Path]:
    """The dotted package a file's folder is (folders with __init__.py), and the folder above it."""
    parts: list[str] = []
    folder = path.absolute().parent
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts), folder


# ----- discovery -----------------------------------------------------------------------------


@dataclass
class Candidate:
    """A way to get a model from a module: `name` as shown (`ResNet()`, `projector`)."""

    name: str
    attribute: str
    build: Callable[[types.ModuleType], Any]


def _required_parameters(function: Callable[..., Any]) -> list[str]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return []
    return [name for name, parameter in signature.parameters.items()
            if parameter.default is inspect.Parameter.empty
            and parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)]


def candidates(module: types.ModuleType, is_model: Callable[[object], bool],
               is_model_class: Callable[[type], bool]) -> list[Candidate]:
    """Model classes defined in the module and constructible without arguments, factory
    functions that take none and whose name says they build a model (build, make_model,
    resnet18, create_backbone; not train_model or load_data), and module-level models."""
    found: list[Candidate] = []
    for attribute, value in vars(module).items():
        if attribute.startswith("_"):
            continue
        defined_here = getattr(value, "__module__", None) == module.__name__
        if isinstance(value, type) and defined_here and is_model_class(value):
            if not _required_parameters(value.__init__)[1:]:  # beyond self
                found.append(Candidate(f"{attribute}()", attribute, _calling(attribute)))
        elif (inspect.isfunction(value) and defined_here and _FACTORY_NAME.fullmatch(attribute)
              and not _NOT_A_FACTORY.search(attribute)):
            if not _required_parameters(value):
                found.append(Candidate(f"{attribute}()", attribute, _calling(attribute)))
        elif is_model(value):
            found.append(Candidate(attribute, attribute, lambda m, a=attribute: getattr(m, a)))
    return found


def named_candidate(module: types.ModuleType, attribute: str, is_model: Callable[[object], bool]) -> Candidate:
    """The factory `--model module:attribute` names, checked before it runs."""
    if not hasattr(module, attribute):
        raise UserCodeError(f"--model: {module.__name__} has no attribute {attribute!r}")
    value = getattr(module, attribute)
    if is_model(value):
        return Candidate(attribute, attribute, lambda m: getattr(m, attribute))
    if not callable(value):
        raise UserCodeError(f"--model: {module.__name__}.{attribute} is neither a model nor a factory")
    required = _required_parameters(value.__init__ if isinstance(value, type) else value)
    required = required[1:] if isinstance(value, type) else required
    if required:
        raise UserCodeError(
            f"--model: {attribute}() needs arguments ({', '.join(required)}); name a factory that takes none, "
            f"e.g. def build(): return {attribute}(...)"
        )
    return Candidate(f"{attribute}()", attribute, _calling(attribute))


def _calling(attribute: str) -> Callable[[types.ModuleType], Any]:
    return lambda module: getattr(module, attribute)()


def build(candidate: Candidate, module: types.ModuleType, user_files: set[str]) -> Any:
    try:
        return candidate.build(module)
    except Exception as error:  # noqa: BLE001 - the user's factory may raise anything
        raise UserCodeError(f"{candidate.name} raised {describe(error)}", user_frame(error, user_files)) from None


# ----- inputs --------------------------------------------------------------------------------

_HOOKS = ("example_inputs", "example_input")


def model_inputs(model: Any, module: types.ModuleType, backend: Backend, flags: list[str] | None,
                 configured: dict[str, Any] | None, candidate: Candidate, user_files: set[str]) -> list[Inputs]:
    """What the model is fed, and where that came from: --input-shape, the configuration
    (this model's entry, else the default), example_inputs() / example_input() beside the
    model, else guesses from the model (its first layer, a cell's hidden size) to try in order."""
    configured = configured or {}
    per_model = configured.get("models", {}).get(candidate.attribute)
    if flags:
        inputs = inputs_from_specs(flags, "from --input-shape")
    elif per_model:
        inputs = inputs_from_specs(per_model, f"from [tool.bnlint.verify.models] {candidate.attribute}")
    elif configured.get("default"):
        inputs = inputs_from_specs(configured["default"], "from [tool.bnlint.verify] input-shape")
    elif (hook := next((name for name in _HOOKS if callable(getattr(module, name, None))), None)) is not None:
        try:
            value = getattr(module, hook)()
        except Exception as error:  # noqa: BLE001 - the user's function may raise anything
            raise UserCodeError(f"{hook}() raised {describe(error)}", user_frame(error, user_files)) from None
        if isinstance(value, (tuple, list)) and value and all(isinstance(size, int) for size in value):
            value = np.zeros(value, np.float32)  # a shape, not a value
        inputs = inputs_from_value(value, f"from {hook}()")
    else:
        try:
            return [replace(guess, inferred=True) for guess in backend.infer_inputs(model, DEFAULT_BATCH)]
        except ValueError as error:
            raise UserCodeError(f"cannot infer the inputs of {candidate.name}: {error}; "
                                f"{how_to_give_inputs(backend, model)}") from None
    tokens = backend.vocabulary(model)
    return [with_vocabulary(inputs, tokens) if tokens else inputs]


def how_to_give_inputs(backend: Backend, model: Any) -> str:
    """The model's signature and the flag or hook that would fit it."""
    shapes = " ".join("--input-shape N,..." for _ in backend.call_parameters(model)) or "--input-shape N,C,H,W"
    return (f"its signature is {type(model).__name__}{backend.signature(model)}: pass {shapes} "
            "(one per positional argument, name=N,... for a keyword, N,T:int for token ids), "
            "or define example_inputs() beside the model returning a tuple or dict of arrays")
