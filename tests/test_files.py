"""File discovery, reading and decoding, and notebooks (cells <-> lines, magics, write-back)."""

from __future__ import annotations

import json
from pathlib import Path

import libcst
import pytest

from bnlint.config import Config
from bnlint.errors import SourceError, UsageError
from bnlint.files import discover, display_path, read_source


def make_tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n" if name.endswith(".py") else "", encoding="utf-8")


def found(root: Path, paths: list[str] | None = None, **settings: object) -> list[str]:
    config = Config(root=root, **settings)  # type: ignore[arg-type]
    return [path.relative_to(root).as_posix() for path in discover(paths or [str(root)], config)]


# --- discovery ---------------------------------------------------------------------------


def test_finds_python_files_and_notebooks_sorted(tmp_path: Path) -> None:
    make_tree(tmp_path, ["b.py", "a/c.py", "a/d.ipynb", "README.md", "setup.cfg", "a/e.pyi"])
    assert found(tmp_path) == ["a/c.py", "a/d.ipynb", "b.py"]


def test_skips_tool_and_environment_directories(tmp_path: Path) -> None:
    skipped = [".git/hook.py", ".venv/lib/x.py", "venv/x.py", "node_modules/x.py", "build/lib/x.py", "dist/x.py",
               "__pycache__/x.py", ".tox/x.py", "pkg.egg-info/x.py", "lib/site-packages/x.py", ".bnlint_cache/x.py"]
    make_tree(tmp_path, [*skipped, "env/pyvenv.cfg", "env/lib/x.py", "src/env/model.py"])
    assert found(tmp_path) == ["src/env/model.py"]  # `env` is skipped only when it is a virtualenv


def test_respects_gitignore_files_with_git_semantics(tmp_path: Path) -> None:
    make_tree(tmp_path, ["model.py", "generated/net.py", "proto/a_pb2.py", "proto/keep_pb2.py", "proto/sub/b_pb2.py"])
    (tmp_path / ".gitignore").write_text("generated/\n*_pb2.py\n", encoding="utf-8")
    (tmp_path / "proto" / ".gitignore").write_text("!keep_pb2.py\n", encoding="utf-8")  # deeper file wins
    assert found(tmp_path) == ["model.py", "proto/keep_pb2.py"]
    assert len(found(tmp_path, respect_gitignore=False)) == 5


def test_gitignore_above_the_walked_directory_applies(tmp_path: Path) -> None:
    make_tree(tmp_path, [".git/HEAD", "src/model.py", "src/model_pb2.py"])
    (tmp_path / ".gitignore").write_text("*_pb2.py\n", encoding="utf-8")
    project = tmp_path / "src"
    assert found(project, [str(project)]) == ["model.py"]  # config root below the repository root


def test_config_exclude_adds_to_the_default_skips(tmp_path: Path) -> None:
    make_tree(tmp_path, ["src/model.py", "src/legacy/old.py", "scripts/run.py", "build/x.py"])
    assert found(tmp_path, exclude=("legacy/", "scripts/*.py")) == ["src/model.py"]


def test_explicit_paths_override_default_skips_and_gitignore_but_not_exclude(tmp_path: Path) -> None:
    make_tree(tmp_path, ["build/gen.py", "ignored/x.py", "vendor/lib.py", "script"])
    (tmp_path / ".gitignore").write_text("ignored/\n", encoding="utf-8")
    explicit = ["build/gen.py", "ignored", "vendor/lib.py", "script"]
    paths = [str(tmp_path / name) for name in explicit]
    assert found(tmp_path, paths, exclude=("vendor/",)) == ["build/gen.py", "ignored/x.py", "script"]


def test_overlapping_paths_are_listed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, ["src/a.py", "b.py"])
    monkeypatch.chdir(tmp_path)
    assert found(tmp_path, [".", "src", str(tmp_path / "src" / "a.py"), "src/../src/a.py"]) == ["b.py", "src/a.py"]


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="^path not found: nowhere/x.py$"):
        discover(["nowhere/x.py"], Config(root=tmp_path))


def test_display_path_is_relative_under_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert display_path(tmp_path / "pkg" / "model.py") == "pkg/model.py"
    assert display_path(Path("pkg/model.py")) == "pkg/model.py"
    assert display_path(tmp_path.parent / "other.py") == (tmp_path.parent / "other.py").as_posix()


# --- reading -----------------------------------------------------------------------------


def test_reads_utf8_keeping_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_bytes("name = 'é'\r\nx = 1\r\n".encode())
    source = read_source(path)
    assert source.text == "name = 'é'\r\nx = 1\r\n"
    assert source.locate(2, 3) == (2, 3, None)
    assert source.to_bytes(source.text) == path.read_bytes()


def test_bom_is_dropped_from_the_text_and_kept_on_write(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_bytes(b"\xef\xbb\xbfx = 1\n")
    source = read_source(path)
    assert source.text == "x = 1\n"
    assert source.to_bytes("x = 2\n") == b"\xef\xbb\xbfx = 2\n"


def test_coding_cookie_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_bytes("# -*- coding: latin-1 -*-\nname = 'é'\n".encode("latin-1"))
    source = read_source(path)
    assert "name = 'é'" in source.text
    assert source.to_bytes(source.text) == path.read_bytes()


def test_invalid_utf8_names_the_byte_and_offset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.py").write_bytes(b"x = 1\ny = '\xff'\n")
    with pytest.raises(SourceError, match=r"^bad.py: not valid UTF-8 \(byte 0xff at offset 11\)$"):
        read_source(Path("bad.py"))


def test_unreadable_file_gives_the_os_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pkg.py").mkdir()
    with pytest.raises(SourceError, match="^pkg.py: cannot read: Is a directory$"):
        read_source(Path("pkg.py"))


# --- notebooks ---------------------------------------------------------------------------


def code(source: str | list[str]) -> dict[str, object]:
    outputs = [{"output_type": "stream", "name": "stdout", "text": ["out\n"]}]
    return {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": outputs, "source": source}


def notebook(cells: list[dict[str, object]], language: str = "python") -> dict[str, object]:
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": language, "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_notebook(path: Path, document: dict[str, object], indent: int = 1) -> str:
    raw = json.dumps(document, indent=indent, ensure_ascii=False) + "\n"
    path.write_text(raw, encoding="utf-8")
    return raw


CELLS = [
    code(["import torch.nn as nn\n", "\n", "layer = nn.Linear(4, 8)"]),
    {"cell_type": "markdown", "metadata": {}, "source": ["# Title"]},
    code(["%matplotlib inline\n", "!pip install torch\n", "files = !ls\n", "for step in range(2):\n", "    %time step\n",
          "bn = nn.BatchNorm1d(8)\n"]),
    code("%%bash\necho hi\n"),
    code("net = nn.Sequential(layer, bn)"),
]


def test_code_cells_are_joined_and_positions_map_back(tmp_path: Path) -> None:
    path = tmp_path / "demo.ipynb"
    write_notebook(path, notebook(CELLS))
    source = read_source(path)
    lines = source.text.splitlines()
    assert lines[2] == "layer = nn.Linear(4, 8)"
    bn_line = lines.index("bn = nn.BatchNorm1d(8)") + 1
    assert source.locate(bn_line, 6) == (6, 6, 2)  # cell 2 among code cells: markdown does not count
    assert source.locate(3, 1) == (3, 1, 1)
    assert source.locate(len(lines), 1) == (1, 1, 4)


@pytest.mark.parametrize("indent", [1, None])
def test_positions_map_to_the_lines_of_the_notebook_file(tmp_path: Path, indent: int | None) -> None:
    path = tmp_path / "demo.ipynb"
    cells = [*CELLS, code(['x = "tab\there"; y = nn.BatchNorm2d(3)  # é\n', 'z = "q\\"" + nn.ReLU()'])]
    raw = write_notebook(path, notebook(cells), indent=indent)
    source = read_source(path)
    assert source.notebook is not None
    file_lines = raw.splitlines()

    def shown(text_line: int, column: int) -> str:
        """The raw file's text from the mapped position on."""
        position = source.notebook.file_position(text_line, column)
        assert position is not None
        line, file_column = position
        return file_lines[line - 1][file_column - 1:]

    lines = source.text.splitlines()
    bn_line = lines.index("bn = nn.BatchNorm1d(8)") + 1
    assert shown(bn_line, 6).startswith('nn.BatchNorm1d(8)\\n"')  # an element of a `source` array
    assert shown(len(lines) - 1, 21).startswith("nn.BatchNorm2d(3)")  # after an escaped tab
    assert shown(len(lines), 13).startswith("nn.ReLU()")  # after escaped quotes and a backslash
    net_line = lines.index("net = nn.Sequential(layer, bn)") + 1
    assert shown(net_line, 7).startswith("nn.Sequential(layer, bn)")  # a `source` string
    if indent:  # one line per source line, as nbformat writes them
        assert source.notebook.file_position(bn_line, 1)[0] == raw[: raw.index('"bn = nn')].count("\n") + 1


def test_magics_become_placeholders_so_the_rest_parses(tmp_path: Path) -> None:
    path = tmp_path / "demo.ipynb"
    write_notebook(path, notebook(CELLS))
    text = read_source(path).text
    libcst.parse_module(text)
    assert not any(magic in text for magic in ("%matplotlib", "pip install", "!ls", "%time", "echo"))
    assert len(text.splitlines()) == 3 + 1 + 6 + 1 + 2 + 1 + 1  # cells + one boundary line each


def test_black_style_continuation_lines_are_not_magics(tmp_path: Path) -> None:
    path = tmp_path / "demo.ipynb"
    cell = "message = (\n    'size %d'\n    % 3\n)\nsame = (1\n    != 2)\n"
    write_notebook(path, notebook([code(cell)]))
    assert read_source(path).text == cell


def test_render_of_unchanged_text_is_the_file_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "demo.ipynb"
    raw = json.dumps(notebook(CELLS), indent=2, ensure_ascii=False)  # no trailing newline
    path.write_text(raw, encoding="utf-8")
    source = read_source(path)
    assert source.render(source.text) == raw


@pytest.mark.parametrize("indent", [1, 2])
def test_render_after_an_edit_changes_only_that_cell(tmp_path: Path, indent: int) -> None:
    path = tmp_path / "demo.ipynb"
    raw = write_notebook(path, notebook(CELLS), indent)
    source = read_source(path)
    edited = source.text.replace("bn = nn.BatchNorm1d(8)\n", "bn = nn.BatchNorm1d(8)\nbn.eval()\n")
    rendered = source.render(edited)
    assert rendered.endswith("}\n") and f'\n{" " * indent}"cells"' in rendered  # layout kept
    document, original = json.loads(rendered), json.loads(raw)
    assert document["cells"][2]["source"] == [*original["cells"][2]["source"], "bn.eval()\n"]  # magics restored
    for index in (0, 1, 3, 4):
        assert document["cells"][index] == original["cells"][index]
    assert document["cells"][2]["outputs"] == original["cells"][2]["outputs"]
    assert document["metadata"] == original["metadata"]


def test_render_keeps_string_sources_and_missing_final_newlines(tmp_path: Path) -> None:
    path = tmp_path / "demo.ipynb"
    write_notebook(path, notebook(CELLS))
    source = read_source(path)
    edited = source.text.replace("net = nn.Sequential(layer, bn)", "net = nn.Sequential(bn)")
    rendered = json.loads(source.render(edited))
    assert rendered["cells"][4]["source"] == "net = nn.Sequential(bn)"
    assert rendered["cells"][0]["source"][-1] == "layer = nn.Linear(4, 8)"


def test_notebook_for_another_language_has_nothing_to_lint(tmp_path: Path) -> None:
    path = tmp_path / "r.ipynb"
    write_notebook(path, notebook([code("library(ggplot2)")], language="R"))
    assert read_source(path).text == ""


def test_cells_in_another_language_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ipynb"
    sql = {**code("SELECT 1"), "metadata": {"vscode": {"languageId": "sql"}}}
    write_notebook(path, notebook([sql, code("x = 1")]))
    source = read_source(path)
    assert source.text == "x = 1\n"
    assert source.locate(1, 1) == (1, 1, 2)


def test_broken_notebook_json_is_a_source_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    with pytest.raises(SourceError, match=r"^broken.ipynb: invalid notebook JSON: .*\(line 1, column 12\)$"):
        read_source(Path("broken.ipynb"))
    (tmp_path / "list.ipynb").write_text("[]", encoding="utf-8")
    with pytest.raises(SourceError, match="^list.ipynb: not a Jupyter notebook"):
        read_source(Path("list.ipynb"))
