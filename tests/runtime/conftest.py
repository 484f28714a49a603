"""Helpers for the runtime checker's tests: write small models, lint them, add the findings
the static rules do not make (rules written elsewhere, or false positives to refute), and
verify everything in one worker run per framework.

A line ending in `# finding: BN201` gets a constructed finding of that code; the static
findings come from the real rules in STATIC_RULES."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnlint.config import Config
from bnlint.diagnostics import Diagnostic, Severity
from bnlint.engine import RunOptions, lint_paths
from bnlint.runtime import Verification, VerifyOptions, verify_results

STATIC_RULES = ("BN101", "BN103", "BN104", "BN105", "BN302", "BN303", "BN304", "BN305", "BN306", "BN307")
_NAMES = {"BN101": "missing-eval", "BN103": "train-mode-not-restored", "BN104": "keras-training-flag-missing",
          "BN105": "keras-finetune-bn-mode", "BN106": "frozen-bn-still-updating",
          "BN107": "keras-inference-in-training-mode", "BN201": "batch-size-one", "BN203": "small-batch",
          "BN204": "multi-device-without-syncbn", "BN401": "weight-decay-on-bn", "BN301": "bn-in-recurrence", "BN302": "num-features-mismatch",
          "BN303": "bn-dimension-mismatch", "BN304": "redundant-bias", "BN305": "dropout-before-bn",
          "BN306": "momentum-convention", "BN307": "eps-as-momentum"}
_MARKER = re.compile(r"#\s*finding:\s*(BN\d{3})")


def constructed(path: str, line: int, text: str, code: str) -> Diagnostic:
    """A finding at the call on `text` (after `name = `, where there is one)."""
    code_part = text.split("#")[0]
    column = (code_part.index(" = ") + 4) if " = " in code_part else len(code_part) - len(code_part.lstrip()) + 1
    return Diagnostic(path, line, column, line, len(code_part.rstrip()) + 1, code, _NAMES[code], Severity.ERROR,
                      f"{code} (constructed by the test)")


@dataclass
class Checked:
    verification: Verification

    def runtime(self, name: str, line: int, code: str) -> dict[str, Any]:
        for result in self.verification.results:
            if Path(result.path).name == name:
                for diagnostic in result.diagnostics:
                    if (diagnostic.line, diagnostic.code) == (line, code):
                        assert diagnostic.runtime is not None
                        return diagnostic.runtime
        raise AssertionError(f"no {code} finding at {name}:{line}")


def line_of(source: str, needle: str) -> int:
    """The 1-based line of the (dedented) source holding `needle`."""
    lines = textwrap.dedent(source).lstrip("\n").splitlines()
    return next(number for number, text in enumerate(lines, start=1) if needle in text)


def verify_sources(folder: Path, sources: dict[str, str], **options: Any) -> Checked:
    for name, source in sources.items():
        (folder / name).write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    config = Config(root=folder, select=STATIC_RULES)
    run = lint_paths([str(folder)], config, RunOptions(jobs=1, use_cache=False))
    for result in run.results:
        lines = Path(result.path).read_text(encoding="utf-8").splitlines()
        found = {(d.line, d.code) for d in result.diagnostics}
        for number, text in enumerate(lines, start=1):
            for code in _MARKER.findall(text):
                if (number, code) not in found:
                    result.diagnostics.append(constructed(result.path, number, text, code))
        result.diagnostics.sort(key=lambda d: d.sort_key)
    return Checked(verify_results(run.results, VerifyOptions(**options), None))
