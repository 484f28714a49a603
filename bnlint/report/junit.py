"""`junit`: a JUnit XML report, which CI test dashboards read (GitLab's `junit` artifact,
Jenkins, Azure's PublishTestResults, GitHub test-report actions).

One `<testsuite>` per file checked; in it a `<testcase>` per finding with one `<failure>`
(the concise line as its text), a passing test case for a clean file, and an `<error>` for
a file that could not be read. The `<testsuites>` root totals them. A test case's `file`
and `line` are where the finding lies in the file (for a notebook, the `.ipynb` file's
line; see `model.placement`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TextIO

from bnlint.diagnostics import FileResult
from bnlint.report.concise import format_line
from bnlint.report.model import Report, ReportOptions, placement

SUITE_NAME = "bnlint"


def write(report: Report, options: ReportOptions, out: TextIO, err: TextIO) -> None:
    root = ET.Element("testsuites", name=SUITE_NAME)
    for result in report.results:
        root.append(_suite(result))
    for total in ("tests", "failures", "errors"):
        root.set(total, str(sum(int(suite.get(total, "0")) for suite in root)))
    ET.indent(root)
    out.write(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


def _suite(result: FileResult) -> ET.Element:
    suite = ET.Element("testsuite", name=result.path)
    if result.error is not None:
        case = ET.SubElement(suite, "testcase", name=SUITE_NAME, classname=result.path, file=result.path)
        ET.SubElement(case, "error", message=result.error)
    for diagnostic in result.diagnostics:
        line = placement(result, diagnostic).line
        case = ET.SubElement(suite, "testcase", name=f"{diagnostic.code} ({diagnostic.rule})", classname=result.path,
                             file=result.path, **({"line": str(line)} if line is not None else {}))
        failure = ET.SubElement(case, "failure", message=diagnostic.message, type=diagnostic.code)
        failure.text = format_line(diagnostic)
    if result.error is None and not result.diagnostics:
        ET.SubElement(suite, "testcase", name=SUITE_NAME, classname=result.path, file=result.path)
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(len(result.diagnostics)))
    suite.set("errors", str(int(result.error is not None)))
    return suite
