"""Never corrupt, never crash, never hang (issue 8): each fault found by the fault hunt,
kept as a regression test. Big pathological inputs are generated here, not committed."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bnlint import engine
from bnlint.cache import ResultCache
from bnlint.cli import main
from bnlint.config import Config, load_config
from bnlint.diagnostics import Applicability, Diagnostic, Edit, FileResult, Fix, Severity
from bnlint.engine import fix_source, lint_source
from bnlint.errors import ConfigError
from bnlint.fixes import FixRefused, apply_edits, unchanged_outside
from bnlint.positions import LineIndex

MODEL = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, bias=True)
        self.bn = nn.BatchNorm2d(64, momentum=0.9)

    def forward(self, x):
        return self.bn(self.conv(x))
"""
FIXED = MODEL.replace("bias=True", "bias=False").replace("momentum=0.9", "momentum=0.1")
# Characters str.splitlines() breaks lines at and LibCST (like Python) does not.
ODD_BREAKS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


def check(*args: str) -> int:
    return main(["check", "--no-cache", "--jobs", "1", "--format", "concise", *args])


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BNLINT_DEBUG", raising=False)
    return tmp_path


def with_odd_text(text: str, odd: str) -> str:
    """`text` with `odd` in a comment and in a string above the findings."""
    return text.replace("import torch.nn as nn\n", f"import torch.nn as nn  # a{odd}b\nNOTE = 'x{odd}y'\n")


# --- --fix: one position model, edits only in their spans --------------------------------


@pytest.mark.parametrize("odd", ODD_BREAKS, ids=[f"U+{ord(c):04X}" for c in ODD_BREAKS])
def test_fixes_land_where_they_belong_after_characters_splitlines_breaks_at(odd: str) -> None:
    assert fix_source(with_odd_text(MODEL, odd), unsafe=True) == with_odd_text(FIXED, odd)


@pytest.mark.parametrize("odd", ODD_BREAKS, ids=[f"U+{ord(c):04X}" for c in ODD_BREAKS])
def test_findings_are_placed_on_libcsts_lines(odd: str) -> None:
    lines = {d.code: d.line for d in lint_source(with_odd_text(MODEL, odd))}
    assert lines == {"BN304": 8, "BN306": 9}


def test_a_form_feed_line_does_not_stop_the_fix() -> None:
    text = MODEL.replace("\n\nclass Net", "\n\x0c\nclass Net")
    assert fix_source(text, unsafe=True) == FIXED.replace("\n\nclass Net", "\n\x0c\nclass Net")


@pytest.mark.parametrize("newline", ["\r", "\r\n"], ids=["lone-CR", "CRLF"])
def test_fixes_in_files_with_other_line_endings(project: Path, newline: str) -> None:
    path = project / "model.py"
    path.write_bytes(MODEL.replace("\n", newline).encode())
    assert check("--fix", "--unsafe-fixes", "model.py") == 0
    assert path.read_bytes() == FIXED.replace("\n", newline).encode()


def test_noqa_counts_lines_like_libcst_too() -> None:
    text = MODEL.replace("momentum=0.9)", "momentum=0.9)  # noqa: BN306").replace("\n", "\r")
    assert [d.code for d in lint_source(text)] == ["BN304"]


def test_line_index_counts_lines_like_libcst() -> None:
    index = LineIndex("a\rb\r\nc\x0cd\u2028e\nf")
    assert index.starts == [0, 2, 5, 11]
    assert index.position(index.offset(3, 3)) == (3, 3)
    assert index.line_text(2) == "b" and index.line_text(3) == "c\x0cd\u2028e"
    with pytest.raises(ValueError):
        index.offset(2, 5)  # past the end of line 2


def _fix_at(line: int, column: int, end_column: int, content: str,
            anchor: tuple[str, str, str] | None = None) -> Diagnostic:
    edit = Edit(line, column, line, end_column, content, anchor)
    return Diagnostic("m.py", line, column, line, end_column, "BN306", "momentum-convention", Severity.WARNING, "m",
                      Fix(Applicability.SAFE, "fix", (edit,)))


def test_an_edit_whose_text_is_not_there_is_not_applied() -> None:
    text = "x = f(momentum=0.9)\n"
    right = _fix_at(1, 16, 19, "0.1", ("f(momentum=", "0.9", ")\n"))
    assert apply_edits(text, [right]) == ("x = f(momentum=0.1)\n", 1)
    stale = _fix_at(1, 15, 18, "0.1", ("f(momentum=", "0.9", ")\n"))  # placed one column off
    assert apply_edits(text, [stale]) == (text, 0)


def test_the_guard_sees_any_change_outside_the_spans() -> None:
    assert unchanged_outside("abcdef", "abXYef", [(2, 4, "XY")])
    assert not unchanged_outside("abcdef", "abXYeg", [(2, 4, "XY")])
    assert not unchanged_outside("abcdef", "aXXYef", [(2, 4, "XY")])


def test_a_fix_that_would_not_parse_writes_nothing_and_says_so(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "model.py"
    path.write_text(MODEL)

    def broken(text: str, diagnostics: object) -> tuple[str, int]:
        raise FixRefused("the fixed code would not parse")

    monkeypatch.setattr(engine, "apply_edits", broken)
    check("--fix", "--unsafe-fixes", "model.py")
    assert path.read_text() == MODEL
    assert "model.py: fixes not applied: the fixed code would not parse" in capsys.readouterr().err


def test_an_edit_producing_invalid_code_is_refused() -> None:
    with pytest.raises(FixRefused, match="would not parse"):
        apply_edits("x = f(momentum=0.9)\n", [_fix_at(1, 16, 19, "0.1 +")])


def test_four_hundred_fixes_in_one_class_are_all_applied() -> None:
    layers = "".join(f"        self.bn{i} = nn.BatchNorm2d(8, momentum=0.9)\n" for i in range(400))
    text = f"import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n{layers}"
    assert fix_source(text) == text.replace("momentum=0.9", "momentum=0.1")


# --- --fix writes through to the real file ------------------------------------------------


def test_a_symlink_stays_a_link_and_its_target_is_fixed(project: Path) -> None:
    (project / "real.py").write_text(MODEL)
    (project / "link.py").symlink_to("real.py")
    check("--fix", "--unsafe-fixes", "link.py")
    assert (project / "link.py").is_symlink()
    assert (project / "real.py").read_text() == FIXED


def test_hard_links_owner_and_mode_are_kept(project: Path) -> None:
    path = project / "model.py"
    path.write_text(MODEL)
    os.link(path, project / "other.py")
    path.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(path, 1234, 1234)
    before = path.stat()
    check("--fix", "--unsafe-fixes", "model.py")
    after = path.stat()
    assert (project / "other.py").read_text() == FIXED
    assert (after.st_ino, after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == \
        (before.st_ino, before.st_uid, before.st_gid, 0o640)


def test_a_read_only_file_is_left_alone_with_a_message(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "model.py"
    path.write_text(MODEL)
    path.chmod(0o444)
    check("--fix", "--unsafe-fixes", "model.py")
    assert path.read_text() == MODEL
    assert "model.py: fixes not written: the file is read-only" in capsys.readouterr().err


def test_a_file_in_a_read_only_folder_is_fixed_and_the_run_goes_on(project: Path) -> None:
    folder = project / "locked"
    folder.mkdir()
    (folder / "a.py").write_text(MODEL)
    (folder / "b.py").write_text(MODEL)
    folder.chmod(0o555)
    try:
        assert check("--fix", "--unsafe-fixes", "locked") == 0
        assert (folder / "a.py").read_text() == FIXED and (folder / "b.py").read_text() == FIXED
        assert sorted(path.name for path in folder.iterdir()) == ["a.py", "b.py"]  # no temporary files
    finally:
        folder.chmod(0o755)


def _notebook(source: str) -> dict[str, object]:
    return {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                       "source": source.splitlines(keepends=True)}],
            "metadata": {"kernelspec": {"language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.parametrize("layout", [{"separators": (",", ":")}, {"indent": 1}, {"indent": 2, "separators": (",", ": ")},
                                    {"separators": (", ", ": ")}], ids=["compact", "nbformat", "indent-2", "spaced"])
def test_a_fixed_notebook_keeps_its_json_layout(project: Path, layout: dict[str, object]) -> None:
    path = project / "model.ipynb"
    path.write_text(json.dumps(_notebook(MODEL), **layout))  # type: ignore[arg-type]
    check("--fix", "--unsafe-fixes", "model.ipynb")
    assert path.read_text() == json.dumps(_notebook(FIXED), **layout)  # type: ignore[arg-type]


# --- the cache ------------------------------------------------------------------------------


def _cached_run(project: Path, *args: str) -> int:
    return main(["check", "--jobs", "1", "--format", "concise", "--cache-dir", str(project / ".cache"), *args])


def test_the_cache_is_json_and_reading_it_runs_nothing(project: Path) -> None:
    (project / "model.py").write_text(MODEL)
    assert _cached_run(project, "model.py") == 1
    (cache_file,) = (project / ".cache").glob("results-*")
    assert cache_file.suffix == ".json"
    json.loads(cache_file.read_text())


@pytest.mark.parametrize("content", [b"null", b"[]", b"{\"format\": 1, \"entries\": {\"x\": null}}", b"\xff\xfe\x00",
                                     b"{\"format\": 1, \"entries\": {\"m\": {\"digest\": 1.5e999}}}", b"{" * 100_000],
                         ids=["null", "list", "entry-null", "bad-utf8", "bad-float", "deep"])
def test_a_damaged_cache_is_rebuilt_silently(project: Path, content: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "model.py").write_text(MODEL)
    assert _cached_run(project, "model.py") == 1
    expected = capsys.readouterr().out
    (cache_file,) = (project / ".cache").glob("results-*")
    cache_file.write_bytes(content)
    assert _cached_run(project, "model.py") == 1
    assert capsys.readouterr().out == expected
    assert _cached_run(project, "model.py") == 1  # and it was rewritten in good order
    assert capsys.readouterr().out == expected


def test_a_mis_shaped_entry_is_not_trusted(project: Path) -> None:
    (project / "model.py").write_text(MODEL)
    _cached_run(project, "model.py")
    (cache_file,) = (project / ".cache").glob("results-*")
    data = json.loads(cache_file.read_text())
    (entry,) = data["entries"].values()
    entry["result"]["diagnostics"][0]["line"] = "8"
    cache_file.write_text(json.dumps(data))
    cache = ResultCache(project / ".cache", cache_file.stem.removeprefix("results-"), True)
    assert cache.entries == {}


def test_a_cache_folder_holding_the_sources_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "model.py").write_text(MODEL)
    assert main(["check", "--cache-dir", ".", "."]) == 2
    assert "holds files to lint" in capsys.readouterr().err
    assert not (project / ".gitignore").exists()


def test_an_ignore_file_only_in_a_cache_folder_bnlint_created(project: Path) -> None:
    (project / "src").mkdir()
    (project / "src" / "model.py").write_text(MODEL)
    (project / "existing").mkdir()
    main(["check", "--cache-dir", "existing", "src"])
    assert list((project / "existing").glob("results-*.json")) and not (project / "existing" / ".gitignore").exists()
    main(["check", "--cache-dir", "made/here", "src"])
    assert (project / "made" / "here" / ".gitignore").read_text().endswith("*\n")


# --- inputs -------------------------------------------------------------------------------

PATHOLOGICAL = {
    "sum-20000": "x = " + " + ".join(["a"] * 20_000) + "\n",
    "calls-1000": "x = " + "f(" * 1000 + ")" * 1000 + "\n",
    "attributes-5000": "x = a" + ".b" * 5000 + "\n",
    "repeated-keyword": "f(a=1, a=2)\n",
    "return-outside-function": "return 1\n",
    "nul-in-comment": "# \x00\n",
}


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_what_cpython_refuses_is_bn000_and_never_reaches_libcst(name: str) -> None:
    text = "import torch.nn as nn\nbn = nn.BatchNorm2d(8, momentum=0.9)\n" + PATHOLOGICAL[name]
    assert [d.code for d in lint_source(text)] == ["BN000"]


def test_code_nested_deeper_than_libcst_parses_quickly_is_not_analysed(project: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (project / "deep.py").write_text("import torch.nn as nn\nbn = nn.BatchNorm2d(8)\nx = " + " + ".join(["a"] * 1500) + "\n")
    (project / "model.py").write_text(MODEL)
    assert check("deep.py", "model.py") == 2
    captured = capsys.readouterr()
    assert "deep.py: not analysed: code nested more than 1000 deep" in captured.err
    assert "model.py:8:" in captured.out


def test_a_big_file_is_compiled_but_not_given_to_libcst(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "big.py").write_text("import torch.nn as nn\nbn = nn.BatchNorm2d(8)\nx = [" + "1," * 600_000 + "]\n")
    assert check("big.py") == 2
    assert "big.py: not analysed: over 1,000,000 characters" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_special_files_and_link_loops_are_one_error_each(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(project / "fifo.py")
    (project / "zero.py").symlink_to("/dev/zero")
    (project / "loop.py").symlink_to("loop.py")
    (project / "tree").mkdir()
    (project / "tree" / "loop.py").symlink_to("loop.py")
    (project / "tree" / "model.py").write_text(MODEL)
    assert check("fifo.py", "zero.py", "loop.py", "tree") == 2
    captured = capsys.readouterr()
    assert captured.err.count("bnlint: error:") == 4, captured.err
    assert "fifo.py: not a regular file" in captured.err and "zero.py: not a regular file" in captured.err
    assert "loop.py: cannot read: Too many levels of symbolic links" in captured.err
    assert "tree/model.py:8:" in captured.out


def test_files_over_the_size_limit_are_not_read(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("bnlint.files.MAX_FILE_BYTES", 100)
    (project / "model.py").write_text(MODEL)
    assert check("model.py") == 2
    assert "model.py: too large to lint" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"cells": [1, "x", null], "metadata": {}}', "cell 1 is not a cell object"),
    ('{"cells": [{"cell_type": "code", "source": [1]}], "metadata": {}}', "malformed 'source'"),
], ids=["deep", "cells-not-objects", "bad-source"])
def test_a_broken_notebook_is_one_error(project: Path, content: str, message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (project / "broken.ipynb").write_text(content)
    (project / "model.py").write_text(MODEL)
    assert check("broken.ipynb", "model.py") == 2
    captured = capsys.readouterr()
    assert captured.err.count("bnlint: error:") == 1 and message in captured.err
    assert "model.py:8:" in captured.out


def test_an_unreadable_folder_is_one_error_and_the_count_is_right(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (project / "closed").mkdir()
    (project / "closed" / "model.py").write_text(MODEL)
    (project / "open.py").write_text(MODEL)
    real_scandir = os.scandir

    def scandir(path: str):  # type: ignore[no-untyped-def]
        if str(path).endswith("closed"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert check(".") == 2
    captured = capsys.readouterr()
    assert "closed: cannot read the directory: Permission denied" in captured.err
    assert "in 1 file" in captured.err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_one_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "model.py"
    path.write_text(MODEL)
    path.chmod(0)
    assert check("model.py") == 2
    assert "model.py: cannot read: Permission denied" in capsys.readouterr().err


def test_an_undecodable_file_exits_2_even_with_exit_zero(project: Path) -> None:
    (project / "latin.py").write_bytes(b"x = '\xe9'\n")
    assert check("latin.py") == 2
    assert check("--exit-zero", "latin.py") == 2


# --- processes ----------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_a_worker_dies_with_its_parent() -> None:
    script = ("import os, sys, time\n"
              "from bnlint.lifetime import die_with_parent\n"
              "parent = os.getpid()\n"
              "child = os.fork()\n"
              "if child == 0:\n"
              "    die_with_parent(parent)\n"
              "    time.sleep(60)\n"
              "    os._exit(0)\n"
              "print(child, flush=True)\n"
              "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    assert _gone(child)


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":  # dead, waiting for a reaper
            return True
        time.sleep(0.05)
    return False


def test_sigterm_interrupts_like_ctrl_c() -> None:
    from bnlint.lifetime import sigterm_as_interrupt

    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_sigterm_to_a_parallel_run_ends_its_workers(tmp_path: Path) -> None:
    layers = "".join(f"        self.bn{i} = nn.BatchNorm2d(8)\n        self.c{i} = nn.Conv2d(8, 8, 3)\n"
                     for i in range(300))
    for index in range(40):
        (tmp_path / f"m{index}.py").write_text(f"import torch.nn as nn\n\nclass N{index}(nn.Module):\n"
                                               f"    def __init__(self):\n{layers}")
    run = subprocess.Popen([sys.executable, "-m", "bnlint", "check", "--no-cache", "--jobs", "2", str(tmp_path)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.monotonic() + 60
    while not workers and run.poll() is None and time.monotonic() < deadline:
        workers = _children(run.pid)
        time.sleep(0.05)
    if not workers:
        run.wait()
        pytest.skip("the run finished before its workers could be seen")
    run.terminate()
    assert run.wait(timeout=10) != 0
    assert all(_gone(worker) for worker in workers)


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_the_memory_cap_holds_in_the_worker_process() -> None:
    script = ("from bnlint.runtime.isolation import limit_memory\n"
              "limit_memory(512)\n"
              "try:\n    bytearray(2 * 1024 ** 3)\nexcept MemoryError:\n    print('capped')\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert completed.stdout.strip() == "capped", completed.stderr


def test_jobs_are_capped_at_the_files_and_processors(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []

    class Pool:
        def __init__(self, workers: int, **_: object) -> None:
            started.append(workers)
            raise RuntimeError("enough")

    monkeypatch.setattr(engine.multiprocessing, "Pool", Pool)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    for index in range(20):
        (project / f"m{index}.py").write_text(MODEL)
    with pytest.raises(RuntimeError):
        engine.lint_paths(["."], Config(root=project), engine.RunOptions(jobs=32, use_cache=False))
    assert started == [20]


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize("table, message", [
    ("verify = 1", "verify must be a table"),
    ("verify = {input-shape = '4,3'}", "verify.input-shape takes [N, C, H, W] or a list of input shapes"),
    ("verify = {shape = [1]}", "verify: unknown key 'shape'"),
    ("per-file-ignores = {'[' = ['BN304']}", "invalid pattern \"[\""),
])
def test_bad_values_are_config_errors_up_front(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.bnlint]\n{table}\n")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_config(tmp_path)


def test_verify_with_a_bad_verify_table_is_a_clean_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pyproject.toml").write_text("[tool.bnlint]\nverify = 1\n")
    (project / "model.py").write_text(MODEL)
    assert main(["verify", "--no-cache", "model.py"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "verify must be a table" in err


def test_file_results_without_errors_are_cached_and_errors_are_not(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c", "k", True)
    cache.put(tmp_path / "a.py", "d", FileResult("a.py"), {})
    cache.put(tmp_path / "b.py", "d", FileResult("b.py", error="b.py: cannot read"), {})
    cache.save()
    again = ResultCache(tmp_path / "c", "k", True)
    assert again.get(tmp_path / "a.py", "d", {}) == FileResult("a.py")
    assert again.get(tmp_path / "b.py", "d", {}) is None


def test_a_cached_notebook_result_keeps_where_its_findings_lie_in_the_file(tmp_path: Path) -> None:
    result = FileResult("nb.ipynb", source_lines={(2, 4): "    nn.Conv2d(3, 64, 3),"},
                        file_positions={(2, 4, 5): (39, 10)})
    cache = ResultCache(tmp_path / "c", "k", True)
    cache.put(tmp_path / "nb.ipynb", "d", result, {})
    cache.save()
    assert ResultCache(tmp_path / "c", "k", True).get(tmp_path / "nb.ipynb", "d", {}) == result
