"""The runtime checker: `bnlint verify` proves or refutes each static finding on the user's
actual model, with the real torch / Keras layers, and proves each fix before it is trusted.

This package's top level imports no framework and runs no user code: it lints, then hands
the findings to a worker process (`worker.py`, under a time limit, see `isolation.py`) that
loads the models (`loader.py`), runs one verifier per rule (`verdicts.py`) through a
framework backend (`torch_backend.py`, `keras_backend.py`) and reports verdicts, which come
back as each finding's `runtime` object. `report_html.py` draws them as an HTML page."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from bnlint.config import verify_inputs
from bnlint.diagnostics import Diagnostic, FileResult
from bnlint.errors import UsageError
from bnlint.files import SourceFile, read_source
from bnlint.runtime.inputs import parse_spec
from bnlint.runtime.isolation import RuntimeCheckError, run_worker

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["RuntimeCheckError", "VerifyOptions", "Verification", "configured_inputs", "verify_results"]


_EXTRAS_HINT = "pip install 'bnlint[torch,runtime]' (or 'bnlint[tensorflow,runtime]' for Keras)"


def require_extras(html_report: bool) -> None:
    """UsageError naming the extra to install when what the runtime checker needs is missing."""
    import importlib.util

    needed = ["numpy", *(["matplotlib"] if html_report else [])]
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"the runtime checker needs {' and '.join(missing)}, which is not installed: {_EXTRAS_HINT}")


@dataclass(frozen=True)
class VerifyOptions:
    model: str | None = None  # module:factory
    inputs: tuple[str, ...] = ()  # --input-shape values, in order
    framework: str | None = None  # torch | keras
    device: str = "cpu"
    timeout: float = 120.0
    seed: int = 0
    notebook_cells: bool = False  # run notebooks' cells up to the model (never by default)
    memory_limit_mib: int | None = 16384  # the worker's address space (frameworks reserve a few GiB)


@dataclass
class Verification:
    results: list[FileResult]  # the findings, each with its `runtime` verdict
    plots: dict[tuple[str, int, int, str], list[dict[str, Any]]] = field(default_factory=dict)  # by sort key
    models: list[dict[str, Any]] = field(default_factory=list)  # what was built, with its input shape and source
    files_checked: int = 0


def configured_inputs(start: Path) -> dict[str, Any] | None:
    """The inputs in the nearest pyproject.toml with a [tool.bnlint.verify] table, as
    `--input-shape` spellings: {"default": [...], "models": {name: [...]}}."""
    directory = start.absolute() if start.is_dir() else start.absolute().parent
    for folder in (directory, *directory.parents):
        candidate = folder / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            table = tomllib.loads(candidate.read_text(encoding="utf-8")).get("tool", {}).get("bnlint", {}).get("verify")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        if table is None:
            continue
        return verify_inputs(table, f"{candidate}: [tool.bnlint] ")
    return None


def model_file(spec: str, paths: list[str]) -> Path:
    """The file `--model module:factory` names: a path, or a module under the given paths, the
    cwd or the installed packages (sys.path: `timm.models.resnet`). Found without importing
    anything (importing would run the user's code here)."""
    module, separator, factory = spec.rpartition(":")
    if not separator or not module or not factory:
        raise UsageError(f"--model expects module:factory, not {spec!r}")
    if module.endswith(".py"):
        candidate = Path(module)
        if not candidate.is_file():
            raise UsageError(f"--model: no such file {module}")
        return candidate
    relative = Path(*module.split("."))
    roots = [Path(p) if Path(p).is_dir() else Path(p).parent for p in paths] + [Path.cwd()]
    roots += [Path(entry) for entry in sys.path if entry and Path(entry).is_dir()]
    for root in roots:
        for candidate in (root / relative.with_suffix(".py"), root / relative / "__init__.py"):
            if candidate.is_file():
                return candidate
    raise UsageError(f"--model: cannot find module {module} under {', '.join(map(str, paths))}, the current folder "
                     "or the installed packages")


def verify_results(results: list[FileResult], options: VerifyOptions, configured: dict[str, Any] | None,
                   model_path: Path | None = None) -> Verification:
    """Run the worker on the findings of `results`: on the models each file builds, or on the
    one --model names (from `model_path`, which must be among `results`)."""
    files = []
    keys: dict[str, tuple[int, int]] = {}
    skipped: dict[tuple[int, int], dict[str, Any]] = {}
    for file_index, result in enumerate(results):
        path = Path(result.path).absolute()
        notebook = path.suffix == ".ipynb"
        if (path.suffix != ".py" and not notebook) or (not result.diagnostics and path != model_path):
            continue
        if notebook and not options.notebook_cells:
            for index in range(len(result.diagnostics)):
                skipped[(file_index, index)] = {
                    "verdict": "not-checkable", "numbers": {}, "fix_verified": None, "model": None,
                    "evidence": "A notebook's findings are checked only with --notebook-cells, which runs its cells "
                                "up to the model's definition."}
            continue
        source = read_source(path)
        diagnostics = []
        for index, diagnostic in enumerate(result.diagnostics):
            key = f"{file_index}:{index}"
            keys[key] = (file_index, index)
            diagnostics.append({"id": key, **_in_text(diagnostic, source).to_json()})
        files.append({"path": str(path), "display": result.path, "text": source.text, "notebook": notebook,
                      "diagnostics": diagnostics})
    if model_path is not None and str(model_path) not in {entry["path"] for entry in files}:
        files.append({"path": str(model_path), "display": str(model_path), "text": read_source(model_path).text,
                      "diagnostics": []})
    request = {"files": files, "model": options.model, "model_path": str(model_path) if model_path else None,
               "inputs": list(options.inputs), "configured": configured, "framework": options.framework, "device": options.device,
               "seed": options.seed}
    response = run_worker(request, options.timeout, options.memory_limit_mib) if files else {"verdicts": {}, "models": []}
    updated = [replace(r, diagnostics=list(r.diagnostics)) for r in results]
    for (file_index, index), verdict in skipped.items():
        updated[file_index].diagnostics[index] = replace(updated[file_index].diagnostics[index], runtime=verdict)
    verification = Verification(updated, models=response["models"])
    inputs = {(model["path"], model["name"]): model for model in verification.models}
    for key, verdict in response["verdicts"].items():
        file_index, index = keys[key]
        plots = verdict.pop("plots")
        model = inputs.get((results[file_index].path, verdict["model"]))
        if model is not None:  # the report says which input shape, and where it came from
            verdict.update(input_shape=model["input_shape"], inputs=model["inputs"], input_source=model["input_source"])
        diagnostic = replace(updated[file_index].diagnostics[index], runtime=verdict)
        updated[file_index].diagnostics[index] = diagnostic
        verification.plots[diagnostic.sort_key] = plots
    return verification


def _in_text(diagnostic: Diagnostic, source: SourceFile) -> Diagnostic:
    """A notebook finding in the coordinates of the notebook's joined code cells, which the
    worker runs; unchanged for a .py file."""
    if source.notebook is None or diagnostic.cell is None:
        return diagnostic
    line = partial(source.notebook.text_line, diagnostic.cell)
    fix = diagnostic.fix
    if fix is not None:
        fix = replace(fix, edits=tuple(replace(edit, line=line(edit.line), end_line=line(edit.end_line))
                                       for edit in fix.edits))
    return replace(diagnostic, line=line(diagnostic.line), end_line=line(diagnostic.end_line), cell=None, fix=fix)


def with_verdict_in_message(diagnostic: Diagnostic) -> Diagnostic:
    """For the text formats, which show the message: the verdict and its evidence appended."""
    if diagnostic.runtime is None:
        return diagnostic
    runtime = diagnostic.runtime
    fix = {True: "; fix verified", False: "; fix NOT verified", None: ""}[runtime["fix_verified"]]
    return replace(diagnostic, message=f"{diagnostic.message} [runtime: {runtime['verdict']}{fix}] {runtime['evidence']}")
