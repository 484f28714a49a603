"""`bnlint verify --report report.html`: one self-contained page, one card per finding with
its code, the verdict, the measured numbers and, where a picture says more, a small
matplotlib chart embedded as a base64 PNG."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from bnlint.diagnostics import Diagnostic
from bnlint.errors import UsageError
from bnlint.runtime import Verification

_CONTEXT_LINES = 2
_COLOURS = {"confirmed": "#b42318", "not-reproduced": "#027a48", "not-checkable": "#667085"}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #101828; }
.card { border: 1px solid #d0d5dd; border-radius: 8px; padding: 1rem 1.25rem; margin: 1rem 0; }
.badge { color: white; border-radius: 4px; padding: 0.1rem 0.5rem; font-size: 0.85rem; }
pre { background: #f2f4f7; padding: 0.5rem; overflow-x: auto; }
pre .anchor { background: #fef0c7; display: inline-block; width: 100%; }
table { border-collapse: collapse; font-size: 0.9rem; }
td { border-bottom: 1px solid #eaecf0; padding: 0.2rem 0.75rem 0.2rem 0; vertical-align: top; }
figure { margin: 0.75rem 0 0; }
img { max-width: 34rem; display: block; }
figcaption { font-size: 0.85rem; color: #475467; max-width: 34rem; }
"""


def write_report(path: Path, verification: Verification) -> None:
    cards = [_card(diagnostic, verification.plots.get(diagnostic.sort_key, []))
             for result in verification.results for diagnostic in result.diagnostics]
    models = "".join(f"<li>{html.escape(m['name'])} from {html.escape(m['path'])} ({m['framework']}): inputs "
                     f"{html.escape(m['inputs'])}, {html.escape(m['input_source'])}</li>" for m in verification.models)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>bnlint verify</title>"
            f"<style>{_STYLE}</style></head><body><h1>bnlint verify</h1>"
            f"<p>{len(cards)} finding(s) checked on the real models.</p><ul>{models}</ul>{''.join(cards)}"
            "</body></html>\n")
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None


def _card(diagnostic: Diagnostic, plots: list[dict[str, Any]]) -> str:
    runtime = diagnostic.runtime or {"verdict": "not-checkable", "evidence": "Not checked at runtime.",
                                     "numbers": {}, "fix_verified": None}
    colour = _COLOURS.get(runtime["verdict"], "#667085")
    fix = {True: "verified", False: "not verified", None: "no fix"}[runtime["fix_verified"]]
    numbers = "".join(f"<tr><td>{html.escape(key)}</td><td>{html.escape(_number(value))}</td></tr>"
                      for key, value in runtime["numbers"].items())
    images = "".join(f"<figure><img alt='{html.escape(plot['title'])}' src='data:image/png;base64,{_png(plot)}'>"
                     f"<figcaption>{html.escape(plot.get('caption', ''))}</figcaption></figure>" for plot in plots)
    return (f"<div class='card'><h2>{diagnostic.code} <small>{html.escape(diagnostic.path)}:{diagnostic.line}</small> "
            f"<span class='badge' style='background:{colour}'>{runtime['verdict']}</span></h2>"
            f"<p>{html.escape(diagnostic.message)}</p>{_code(diagnostic)}"
            f"<p><b>Evidence:</b> {html.escape(runtime['evidence'])}</p><p><b>Fix:</b> {fix}</p>"
            f"<table>{numbers}</table>{images}</div>")


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and value and isinstance(value[0], float):
        return "[" + ", ".join(f"{item:.3g}" for item in value) + "]"
    return value if isinstance(value, str) else json.dumps(value)


def _code(diagnostic: Diagnostic) -> str:
    try:
        lines = Path(diagnostic.path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    first = max(1, diagnostic.line - _CONTEXT_LINES)
    last = min(len(lines), diagnostic.end_line + _CONTEXT_LINES)
    shown = []
    for number in range(first, last + 1):
        text = html.escape(f"{number:4} | {lines[number - 1]}")
        shown.append(f"<span class='anchor'>{text}</span>" if diagnostic.line <= number <= diagnostic.end_line
                     else text)
    return "<pre>" + "\n".join(shown) + "</pre>"


def _png(plot: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 3.4), dpi=100)
    series = plot["series"]
    if plot["kind"] == "lines":
        for label, values in series.items():
            steps = range(1, len(values) + 1)
            if label in plot.get("points", ()):
                axes.scatter(steps, values, label=label, s=8, color="#98a2b3", zorder=1)
            elif label == plot.get("reference"):
                axes.plot(steps, values, label=label, linestyle="--", color="#101828", zorder=3)
            else:
                axes.plot(steps, values, label=label, zorder=2)
        axes.legend(fontsize=7)
    elif plot["kind"] == "strip":
        for position, (label, values) in enumerate(series.items()):
            axes.scatter([position] * len(values), values, label=label, alpha=0.7)
        axes.set_xticks(range(len(series)), list(series))
        axes.set_xlim(-0.5, len(series) - 0.5)
    else:
        values = [value for values in series.values() for value in values]
        labels = list(series) if all(len(v) == 1 for v in series.values()) else [str(i) for i in range(len(values))]
        axes.bar(labels, values, color=["#f79009" if label == plot.get("reference") else "#4e79a7" for label in labels])
    axes.set_title(plot["title"], fontsize=9)
    axes.set_xlabel(plot.get("xlabel", ""), fontsize=8)
    axes.set_ylabel(plot.get("ylabel", ""), fontsize=8)
    axes.tick_params(labelsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
