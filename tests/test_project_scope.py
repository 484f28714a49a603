"""One answer however bnlint is run: the findings for a file are computed from its whole
project, whichever files the run names, in any order, from the cache or not, from stdin.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnlint.config import Config, load_config
from bnlint.engine import RunOptions, lint_paths
from bnlint.paths import display_path
from bnlint.semantics.project.scope import Project, project_root

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

NET = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(20, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, x):
        return self.body(x)
"""

# The issue's package: train.py hands the model to helpers in engine.py and helpers.py.
TRAINING = {
    "pkg/__init__.py": "",
    "pkg/models.py": NET,
    "pkg/engine.py": """
        import torch


        def evaluate(model, loader):
            model.eval()
            with torch.no_grad():
                return [model(x) for x, _ in loader]


        def train_epoch(model, loader, optimizer):
            for x, y in loader:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
        """,
    "pkg/helpers.py": """
        def set_eval(module):
            module.eval()
        """,
    "pkg/train.py": """
        import torch

        from . import engine
        from .models import Net

        model = Net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(30):
            engine.train_epoch(model, [], optimizer)
            engine.evaluate(model, [])
        """,
    "pkg/use.py": """
        import torch

        from .helpers import set_eval
        from .models import Net

        model = Net()
        set_eval(model)
        with torch.no_grad():
            out = model(torch.randn(8, 20))
        """,
}

# Shaped like a model library (timm, ultralytics): layer helpers re-exported with `*`
# through a package `__init__`, models importing them, an import cycle between the
# package and a registry, a helper conv whose bias only its callers show to be redundant,
# and a script outside the package.
LIBRARY = {
    "src/lib/__init__.py": "from .layers import *\nfrom .models import *\n",
    "src/lib/layers/__init__.py": "from .conv import conv3x3, conv_bn\nfrom .norm import *\n",
    "src/lib/layers/conv.py": """
        import torch.nn as nn

        from .norm import norm_layer


        def conv3x3(cin, cout, stride=1):
            return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


        def conv_bn(cin, cout):
            return nn.Sequential(conv3x3(cin, cout), norm_layer(cout), nn.ReLU())
        """,
    "src/lib/layers/norm.py": """
        from functools import partial

        import torch.nn as nn

        norm_layer = partial(nn.BatchNorm2d, momentum=0.9)
        __all__ = ["norm_layer"]
        """,
    "src/lib/registry.py": """
        from lib import models

        MODELS = {"small": models.small.SmallNet}
        """,
    "src/lib/models/__init__.py": "from .small import SmallNet\nfrom .. import registry\n",
    "src/lib/models/small.py": """
        import torch.nn as nn

        from ..layers import *


        class SmallNet(nn.Module):
            def __init__(self, classes=10):
                super().__init__()
                self.stem = conv3x3(3, 32)
                self.bn = norm_layer(32)
                self.block = conv_bn(32, 64)
                self.head = nn.Linear(64, classes)

            def forward(self, x):
                x = self.block(self.bn(self.stem(x)).relu())
                return self.head(x.mean((2, 3)))
        """,
    "scripts/run.py": """
        import torch

        from lib.models.small import SmallNet

        net = SmallNet()
        with torch.no_grad():
            print(net(torch.randn(1, 3, 32, 32)))
        for epoch in range(3):
            net.train()
            loss = net(torch.randn(8, 3, 32, 32)).sum()
            loss.backward()
        """,
}


def write_project(root: Path, files: dict[str, str], pyproject: str = "[project]\nname = 'p'\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(pyproject)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


Findings = dict[str, list[tuple[str, int, int, str]]]


def findings_of(paths: list[Path], root: Path, cache: Path | None = None, jobs: int = 1) -> Findings:
    options = RunOptions(jobs=jobs, use_cache=cache is not None, cache_dir=cache or Path(".bnlint_cache"))
    run = lint_paths([str(path) for path in paths], _config(root), options)
    return {result.path: sorted((d.code, d.line, d.column, d.message) for d in result.diagnostics)
            for result in run.results}


def stdin_findings_of(path: Path, root: Path) -> Findings:
    run = lint_paths(["-"], _config(root), RunOptions(jobs=1, use_cache=False), (path, path.read_bytes()))
    return {result.path: sorted((d.code, d.line, d.column, d.message) for d in result.diagnostics)
            for result in run.results}


def _config(root: Path) -> Config:
    return load_config(root).with_overrides(select=["ALL"])


def python_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if ".bnlint_cache" not in path.parts)


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[Path], Findings]]:
    """Each project: its root, its files, and the findings of a whole-project run."""
    made = {}
    base = tmp_path_factory.mktemp("projects")
    library_config = "[tool.bnlint]\nsrc = ['src', 'scripts']\n"
    for name, root in [("training", write_project(base / "training", TRAINING)),
                       ("library", write_project(base / "library", LIBRARY, library_config))]:
        files = python_files(root)
        made[name] = (root, files, findings_of([root], root))
    examples = sorted(path for path in EXAMPLES.rglob("*") if path.suffix in (".py", ".ipynb"))
    made["examples"] = (REPO, examples, findings_of([EXAMPLES], REPO))
    return made


def test_the_issue_findings_hold_in_the_whole_project(projects: dict[str, tuple[Path, list[Path], Findings]]) -> None:
    root, _, whole = projects["training"]
    shown = {Path(path).name: codes for path, codes in whole.items()}
    assert [code for code, *_ in shown["engine.py"]] == ["BN103"]  # established by train.py's loop
    assert shown["use.py"] == []  # set_eval in helpers.py switches the model
    assert [code for code, *_ in projects["library"][2][display_path(root.parent / "library/src/lib/layers/norm.py")]
            ] == ["BN306"]


def test_a_file_alone_gets_its_whole_project_findings(projects: dict[str, tuple[Path, list[Path], Findings]]) -> None:
    for root, files, whole in projects.values():
        for path in files:
            shown = display_path(path)
            assert findings_of([path], root) == {shown: whole[shown]}, shown


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_findings_do_not_depend_on_how_bnlint_is_run(projects: dict[str, tuple[Path, list[Path], Findings]],
                                                      tmp_path_factory: pytest.TempPathFactory,
                                                      data: st.DataObject) -> None:
    """For every file F: the same findings whether the run names F alone, F with any other
    subset, the whole project, or F's buffer on stdin; with or without a warm cache (shared
    across the examples, so filled by earlier runs of any shape); in any order of runs."""
    name = data.draw(st.sampled_from(sorted(projects)), label="project")
    root, files, whole = projects[name]
    cache = _shared_cache(tmp_path_factory, name)
    for _ in range(data.draw(st.integers(1, 3), label="runs")):
        subset = data.draw(st.lists(st.sampled_from(files), min_size=1, max_size=4, unique=True), label="subset")
        how = data.draw(st.sampled_from(["cached", "cold", "stdin"]), label="how")
        if how == "stdin":
            found = stdin_findings_of(subset[0], root)
        else:
            found = findings_of(subset, root, cache if how == "cached" else None)
        assert found == {display_path(path): whole[display_path(path)] for path in (subset[:1] if how == "stdin"
                                                                                      else subset)}


def _shared_cache(factory: pytest.TempPathFactory, name: str) -> Path:
    folder = factory.getbasetemp() / f"cache-{name}"
    return folder


def test_a_cache_filled_by_a_partial_run_hides_nothing_from_a_full_run(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", TRAINING)
    cache = tmp_path / "cache"
    assert findings_of([root / "pkg/train.py"], root, cache) == {display_path(root / "pkg/train.py"): []}
    whole = findings_of([root], root, cache)
    assert [code for code, *_ in whole[display_path(root / "pkg/engine.py")]] == ["BN103"]


def test_editing_an_imported_helper_changes_a_cached_dependent_result(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", TRAINING)
    cache = tmp_path / "cache"
    use = root / "pkg/use.py"
    assert findings_of([use], root, cache) == {display_path(use): []}
    (root / "pkg/helpers.py").write_text("def set_eval(module):\n    return module\n")
    assert [code for code, *_ in findings_of([use], root, cache)[display_path(use)]] == ["BN101"]


def test_editing_a_caller_changes_the_helper_file_result(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", TRAINING)
    cache = tmp_path / "cache"
    engine = root / "pkg/engine.py"
    assert [code for code, *_ in findings_of([engine], root, cache)[display_path(engine)]] == ["BN103"]
    train = root / "pkg/train.py"
    train.write_text(train.read_text().replace("    engine.train_epoch", "    model.train()\n    engine.train_epoch"))
    assert findings_of([engine], root, cache) == {display_path(engine): []}


def test_a_new_module_changes_how_imports_resolve(tmp_path: Path) -> None:
    files = dict(TRAINING)
    del files["pkg/helpers.py"]
    root = write_project(tmp_path / "p", files)
    cache = tmp_path / "cache"
    use = root / "pkg/use.py"
    before = findings_of([use], root, cache)[display_path(use)]
    assert [code for code, *_ in before] == ["BN101"]  # set_eval is unknown
    write_project(root, {"pkg/helpers.py": TRAINING["pkg/helpers.py"]})
    assert findings_of([use], root, cache) == {display_path(use): []}


def test_exclusions_decide_what_is_reported_not_what_is_read(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", TRAINING, "[tool.bnlint]\nexclude = ['pkg/helpers.py', 'pkg/train.py']\n")
    found = findings_of([root], root)
    assert display_path(root / "pkg/helpers.py") not in found
    assert found[display_path(root / "pkg/use.py")] == []
    assert [code for code, *_ in found[display_path(root / "pkg/engine.py")]] == ["BN103"]


def test_the_project_root(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", TRAINING)
    assert project_root(root / "pkg/train.py") == root
    assert project_root(root / "pkg") == root
    (root / "pyproject.toml").unlink()
    assert project_root(root / "pkg/train.py") == root  # no marker: above the outermost package
    (root / "setup.cfg").write_text("")
    assert project_root(root / "pkg/engine.py") == root


def test_the_import_graph_follows_star_and_relative_imports(tmp_path: Path) -> None:
    root = write_project(tmp_path / "lib", LIBRARY)
    project = Project.scan(root, [root / "src", root / "scripts"], {})
    small = root / "src/lib/models/small.py"
    assert root / "src/lib/layers/__init__.py" in project.imports[small]
    assert str(root / "src/lib/layers/norm.py") in project.dependencies(small)
    assert small in project.analysed_with([root / "src/lib/layers/norm.py"])
    assert root / "scripts/run.py" in project.analysed_with([small])


def test_project_root_option_and_stdin_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from bnlint.cli import main

    root = write_project(tmp_path / "p", TRAINING)
    monkeypatch.chdir(root)
    engine = root / "pkg/engine.py"
    text = engine.read_text()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["check", "--no-cache", "--format", "concise", "--stdin-filename", "pkg/engine.py", "-"]) == 1
    assert capsys.readouterr().out.startswith("pkg/engine.py:5:5: error: BN103")
    assert main(["check", "--no-cache", "--format", "concise", "--project-root", str(root), "pkg/use.py"]) == 0
    assert main(["check", "--no-cache", "--stdin-filename", "pkg/engine.py", "pkg"]) == 2
    assert "needs `-`" in capsys.readouterr().err


def test_stdin_fix_writes_the_fixed_source_to_stdout_and_nothing_to_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from bnlint.cli import main

    root = write_project(tmp_path / "p", {"pkg/__init__.py": "", "pkg/net.py": """
        import torch.nn as nn

        net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, momentum=0.9))
        """})
    monkeypatch.chdir(root)
    on_disk = (root / "pkg/net.py").read_text()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(on_disk.encode())))
    status = main(["check", "--no-cache", "--fix", "--stdin-filename", "pkg/net.py", "-"])
    out = capsys.readouterr()
    assert "momentum=0.1" in out.out and "BN304" in out.err
    assert status == 1  # BN304's fix is unsafe: it remains
    assert (root / "pkg/net.py").read_text() == on_disk
    assert not (root / ".bnlint_cache").exists()
    shutil.rmtree(root)


def test_a_cache_that_cannot_be_written_is_one_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_project(tmp_path / "p", TRAINING)
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    engine = root / "pkg/engine.py"
    found = findings_of([engine], root, blocked / "cache")  # a folder inside a file cannot be made
    assert [code for code, *_ in found[display_path(engine)]] == ["BN103"]
    err = capsys.readouterr().err
    assert err.count("warning: cannot write the cache") == 1
