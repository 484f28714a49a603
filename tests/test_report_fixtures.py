"""Hand-built findings and a small catalogue shared by the reporter tests (no tests here)."""

from __future__ import annotations

from bnlint.diagnostics import Applicability, Diagnostic, Edit, FileResult, Fix, Severity
from bnlint.registry import RuleInfo
from bnlint.report import Report

RULES = {
    "BN302": RuleInfo(
        code="BN302",
        name="num-features-mismatch",
        severity=Severity.ERROR,
        frameworks=("torch", "keras"),
        fix=Applicability.SAFE,
        summary="num_features must equal the channels of the layer that feeds batch norm",
        documentation="# num-features-mismatch (BN302)\n\n## What it does\nChecks channels.\n",
    ),
    "BN304": RuleInfo(
        code="BN304",
        name="redundant-bias",
        severity=Severity.WARNING,
        frameworks=("torch", "keras"),
        fix=Applicability.UNSAFE,
        summary="batch norm cancels a bias added just before it",
        documentation="# redundant-bias (BN304)\n\n## What it does\nChecks biases.\n",
    ),
    "BN305": RuleInfo(
        code="BN305",
        name="dropout-before-bn",
        severity=Severity.WARNING,
        frameworks=("torch", "keras"),
        fix=None,
        summary="dropout before batch norm shifts the variance between training and inference",
        documentation="# dropout-before-bn (BN305)\n",
    ),
}

MODEL_SOURCE = {
    (0, 4): "        nn.Conv2d(3, 64, 3),",
    (0, 5): "        nn.BatchNorm2d(32),",
    (0, 9): "        nn.Dropout(0.5),  # noqa: BN305",
}


def diagnostic(code: str, line: int, column: int, end_column: int, message: str, *, path: str = "src/model.py",
               severity: Severity | None = None, fix: Fix | None = None, cell: int | None = None) -> Diagnostic:
    rule = RULES[code]
    return Diagnostic(path=path, line=line, column=column, end_line=line, end_column=end_column, code=code,
                      rule=rule.name, severity=severity or rule.severity, message=message, fix=fix, cell=cell)


SAFE_FIX = Fix(Applicability.SAFE, "Set num_features to 64", (Edit(5, 24, 5, 26, "64"),))
UNSAFE_FIX = Fix(Applicability.UNSAFE, "Set `bias=False`", (Edit(4, 27, 4, 27, ", bias=False"),))


def sample_report(*, fixed_count: int | None = None) -> Report:
    model = FileResult(
        path="src/model.py",
        diagnostics=[
            diagnostic("BN304", 4, 9, 28, "`Conv2d` feeds `BatchNorm2d`: its bias is cancelled", fix=UNSAFE_FIX),
            diagnostic("BN302", 5, 9, 27, "BatchNorm2d(32) follows a layer with 64 channels", fix=SAFE_FIX),
        ],
        source_lines=MODEL_SOURCE,
    )
    notebook = FileResult(
        path="notebooks/train.ipynb",
        diagnostics=[
            diagnostic("BN305", 2, 5, 20, "Dropout directly before BatchNorm1d", path="notebooks/train.ipynb",
                       cell=3, severity=Severity.INFO),
        ],
        source_lines={(3, 2): "    nn.Dropout(0.2),"},
        file_positions={(3, 2, 5): (41, 10)},  # where the cell's line is stored in the .ipynb
    )
    return Report(results=[notebook, model], rules=RULES, files_checked=12, fixed_count=fixed_count)


def empty_report() -> Report:
    return Report(results=[FileResult(path="src/ok.py")], rules=RULES, files_checked=1)
