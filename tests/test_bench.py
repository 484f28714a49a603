"""bench/run.py: argument parsing, corpus selection, output parsing and the report.

No real tool runs: the subprocess tests use a one-line Python command.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_run", REPO_ROOT / "bench" / "run.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_run"] = bench  # dataclasses resolve annotations through sys.modules
_spec.loader.exec_module(bench)

MAKE_CORPUS_EXCERPT = """\
MODELS=(
  "timm==1.0.31|*.py"
  "transformers==5.24.0|transformers/models/*.py"
)
TRAINING=(
  "pytorch-tabnet==4.1.0|*.py"
)
case "${TIER:-all}" in
"""


def test_defaults_put_the_corpus_outside_the_repo_and_run_every_tool() -> None:
    args = bench.build_parser().parse_args([])
    assert args.corpus == REPO_ROOT.parent / "corpus-bench"
    assert args.tier == "models"
    assert args.sample is None
    assert args.skip == frozenset()
    assert args.peers_venv == REPO_ROOT / "bench" / ".venv-peers"


def test_skip_accepts_a_comma_list_of_known_tools() -> None:
    args = bench.build_parser().parse_args(["--skip", "torchfix, ruff", "--sample", "300"])
    assert args.skip == {"torchfix", "ruff"}
    assert args.sample == 300


@pytest.mark.parametrize("argv, message", [
    (["--skip", "torchfix,flake8"], "unknown tool flake8"),
    (["--sample", "0"], "must be at least 1"),
    (["--timeout", "-3"], "must be greater than 0"),
    (["--tier", "everything"], "invalid choice"),
])
def test_bad_arguments_get_one_clear_message(argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("tier, expected", [
    ("models", ["timm-1.0.31", "transformers-5.24.0"]),
    ("training", ["pytorch-tabnet-4.1.0"]),
    ("all", ["timm-1.0.31", "transformers-5.24.0", "pytorch-tabnet-4.1.0"]),
])
def test_tier_packages_come_from_the_corpus_script(tier: str, expected: list[str]) -> None:
    assert bench.tier_packages(MAKE_CORPUS_EXCERPT, tier) == expected


def test_an_unreadable_corpus_script_is_a_bench_error() -> None:
    with pytest.raises(bench.BenchError, match="MODELS/TRAINING"):
        bench.tier_packages("echo nothing here\n", "models")


def test_a_corpus_inside_the_repo_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    with pytest.raises(bench.BenchError, match="outside the repository"):
        bench.ensure_corpus(REPO_ROOT / "corpus-bench", tmp_path, "models")


def test_sample_is_deterministic_evenly_spread_and_capped_at_the_tier() -> None:
    files = [Path(f"f{index:03}.py") for index in range(100)]
    sample = bench.select_sample(files, 4)
    assert sample == [Path("f000.py"), Path("f025.py"), Path("f050.py"), Path("f075.py")]
    assert bench.select_sample(files, 4) == sample
    assert bench.select_sample(files, 500) == files
    assert bench.select_sample(files, None) == files


def test_copy_sample_keeps_the_package_layout(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    source = corpus / "timm-1.0.31" / "timm" / "layers" / "norm.py"
    source.parent.mkdir(parents=True)
    source.write_text("x = 1\n")
    copies = bench.copy_sample([source], corpus, tmp_path / "sample")
    assert copies == [tmp_path / "sample" / "timm-1.0.31" / "timm" / "layers" / "norm.py"]
    assert copies[0].read_text() == "x = 1\n"


def test_findings_are_counted_per_code_from_concise_lines_only() -> None:
    output = "\n".join([
        "/c/timm/a.py:3:5: error: BN302 num_features=32 but the conv has 64 channels",
        "nb.ipynb:cell 3:10:1: warning: BN302 num_features=8 but the conv has 16 channels",
        "src/b.py:12:9: UP045 [*] Use `X | None` for type annotations",
        "models/c.py:13:12: TOR901 Use `torch.library._scoped_library`",
        "Found 4 errors.",
        "warning: something unrelated: 1:2",
    ])
    assert bench.count_findings(output) == {"BN302": 2, "UP045": 1, "TOR901": 1}


def test_torchfix_note_reports_how_many_files_it_parsed() -> None:
    run = bench.ToolRun("torchfix", "torchfix", [])
    bench.record_torchfix(run, "a.py:1:1: TOR101 x\n", "Finished checking 133 files.\n")
    assert (run.findings, run.findings_by_code) == (1, {"TOR101": 1})
    assert "parsed 133" in run.note


def _ok(name: str, wall_s: float) -> bench.ToolRun:
    return bench.ToolRun(name, name.split("-")[0], [], status="ok", wall_s=wall_s)


def test_ratios_compare_wall_times_against_minimum_targets() -> None:
    runs = [_ok("torchfix", 60.0), _ok("bnlint-cold", 5.0), _ok("ruff-all-rules", 1.0),
            _ok("bnlint-cached", 2.0),
            bench.ToolRun("libcst-parse-1core", "parse", [], status="timeout", wall_s=9.0)]
    ratios = {ratio["label"]: ratio for ratio in bench.compute_ratios(runs)}
    assert ratios["torchfix / bnlint-cold"]["value"] == pytest.approx(12.0)
    assert ratios["torchfix / bnlint-cold"]["met"] is True
    assert ratios["ruff-all-rules / bnlint-cached"]["met"] is False
    parse_ratio = ratios["libcst-parse-1core / bnlint-cold-1core"]
    assert (parse_ratio["value"], parse_ratio["met"]) == (None, None)


def test_a_cached_run_with_other_findings_is_flagged() -> None:
    cold, cached = _ok("bnlint-cold", 5.0), _ok("bnlint-cached", 1.0)
    cold.findings_by_code, cached.findings_by_code = {"BN302": 2}, {"BN302": 1}
    bench.consistency_notes([cold, cached])
    assert "differ" in cached.note and "differ" not in cold.note


def test_report_lists_each_tool_the_ratios_and_the_commands() -> None:
    ran = bench.ToolRun("bnlint-cold", "bnlint", ["python", "-m", "bnlint", "check", "dir x"],
                        status="ok", wall_s=1.234, exit_code=0, files=3, findings=2,
                        findings_by_code={"BN302": 2})
    skipped = bench.ToolRun("torchfix", "torchfix", ["torchfix", "dir"])
    corpus = {"dir": "/c", "tier": "models", "sample": 3, "files": 3, "tier_files": 4807,
              "lines": 1234}
    machine = {"cpus": 2, "cpu_model": "", "python": "3.11.7", "platform": "Linux"}
    report = bench.format_report(corpus, machine, {"ruff": "0.17.6"}, [ran, skipped],
                                 bench.compute_ratios([ran, skipped]))
    assert "3 of 4807 files (evenly spread sample), 1,234 lines" in report
    assert any(line.split()[:3] == ["bnlint-cold", "ok", "1.23"] for line in report.splitlines())
    assert "bnlint findings by code: BN302 2" in report
    assert "torchfix / bnlint-cold" in report and "n/a  target >= 10x" in report
    assert "python -m bnlint check 'dir x'" in report
    assert "torchfix: torchfix dir" not in report  # skipped tools ran no command


def _python_spec(code: str) -> bench.ToolSpec:
    return bench.ToolSpec("probe", "ruff", [sys.executable, "-c", code], bench.record_findings)


def test_execute_counts_findings_and_accepts_a_linter_exit_1(tmp_path: Path) -> None:
    code = "import sys; print('a.py:1:2: BN305 dropout before bn'); sys.exit(1)"
    run = bench.execute(_python_spec(code), files=1, work=tmp_path, timeout_s=30)
    assert (run.status, run.exit_code, run.findings) == ("ok", 1, 1)
    assert run.wall_s is not None and run.wall_s > 0


def test_execute_reports_a_crash_with_the_end_of_its_stderr(tmp_path: Path) -> None:
    code = "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"
    run = bench.execute(_python_spec(code), files=1, work=tmp_path, timeout_s=30)
    assert (run.status, run.exit_code, run.note) == ("failed", 3, "boom")
    assert run.findings is None
