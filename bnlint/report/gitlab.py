"""`gitlab`: a GitLab Code Quality report (the `codequality` artifact of a CI job).

A JSON array of issues with `description`, `check_name`, `fingerprint`, `severity`
(info | minor | major | critical | blocker) and `location.path` / `location.lines.begin`,
as GitLab documents it. Paths are as bnlint shows them: run from the repository root.
Fingerprints are those of SARIF (`model.fingerprints`): stable when code above moves. A
notebook finding names the `.ipynb` file's own line (what the merge-request diff shows).
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from bnlint.diagnostics import Severity
from bnlint.report.model import Report, ReportOptions, fingerprints, placement

SEVERITIES = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.INFO: "info"}


def write(report: Report, options: ReportOptions, out: TextIO, err: TextIO) -> None:
    issues: list[dict[str, Any]] = []
    for result in report.results:
        for diagnostic, fingerprint in zip(result.diagnostics, fingerprints(result), strict=True):
            where = placement(result, diagnostic)
            issues.append(
                {
                    "description": f"{diagnostic.code} {where.message}",
                    "check_name": diagnostic.code,
                    "fingerprint": fingerprint,
                    "severity": SEVERITIES[diagnostic.severity],
                    "location": {"path": diagnostic.path, "lines": {"begin": where.line or 1}},
                }
            )
    json.dump(issues, out, indent=2)
    out.write("\n")
