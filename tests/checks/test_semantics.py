"""The semantic layer itself: qualified names and aliases, the layer catalogue, channel
counts as linear forms, and facts that cross files (with the result cache)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import libcst as cst
import pytest

from bnlint import engine
from bnlint.config import load_config
from bnlint.diagnostics import FileResult
from bnlint.engine import RunOptions, RunResult, lint_paths
from bnlint.fixes import FixMode
from bnlint.semantics.catalogue.layers import Framework, Kind, lookup
from bnlint.semantics.interp.values import Count
from bnlint.semantics.names import import_bindings

from .conftest import assert_each_file_alone_gets_the_same, codes_at

# ----- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qualname", "framework", "kind", "name"),
    [
        ("torch.nn.modules.conv.Conv2d", Framework.TORCH, Kind.CONV, "Conv2d"),
        ("torch.nn.BatchNorm2d", Framework.TORCH, Kind.BATCH_NORM, "BatchNorm2d"),
        ("torch.nn.modules.batchnorm.SyncBatchNorm", Framework.TORCH, Kind.BATCH_NORM, "SyncBatchNorm"),
        ("torch.nn.functional.batch_norm", Framework.TORCH, Kind.BATCH_NORM, "batch_norm"),
        ("torch.nn.Linear", Framework.TORCH, Kind.LINEAR, "Linear"),
        ("tensorflow.keras.layers.Conv2D", Framework.KERAS, Kind.CONV, "Conv2D"),
        ("keras.layers.BatchNormalization", Framework.KERAS, Kind.BATCH_NORM, "BatchNormalization"),
        ("tf_keras.layers.Dense", Framework.KERAS, Kind.LINEAR, "Dense"),
        ("keras.src.layers.core.dense.Dense", Framework.KERAS, Kind.LINEAR, "Dense"),
        ("tensorflow.keras.Sequential", Framework.KERAS, Kind.CONTAINER, "Sequential"),
    ],
)
def test_lookup_resolves_qualified_names(qualname: str, framework: Framework, kind: Kind, name: str) -> None:
    spec = lookup(qualname)
    assert spec is not None
    assert (spec.framework, spec.kind, spec.name) == (framework, kind, name)


@pytest.mark.parametrize(
    "qualname",
    ["torch.cat", "torch.BatchNorm2d", "mylib.layers.Conv2D", "tensorflow.Sequential", "torch.nn.Transformer"],
)
def test_lookup_ignores_names_outside_the_catalogue(qualname: str) -> None:
    assert lookup(qualname) is None


@pytest.mark.parametrize(
    ("statement", "module", "is_package", "bindings"),
    [
        ("import torch.nn as nn", "train", False, [("nn", "torch.nn")]),
        ("import torch.nn", "train", False, [("torch", "torch")]),
        ("from torch.nn import BatchNorm2d as BN, Conv2d", "train", False,
         [("BN", "torch.nn.BatchNorm2d"), ("Conv2d", "torch.nn.Conv2d")]),
        ("from tensorflow.keras import layers as L", "train", False, [("L", "tensorflow.keras.layers")]),
        ("from .blocks import make_bn", "models.net", False, [("make_bn", "models.blocks.make_bn")]),
        ("from . import blocks", "models", True, [("blocks", "models.blocks")]),
        ("from ..common import conv_bn", "models.backbones.resnet", False,
         [("conv_bn", "models.common.conv_bn")]),
    ],
)
def test_import_bindings(statement: str, module: str, is_package: bool, bindings: list[tuple[str, str]]) -> None:
    node = cst.parse_statement(statement).body[0]
    assert isinstance(node, (cst.Import, cst.ImportFrom))
    assert import_bindings(node, module, is_package) == bindings


@pytest.mark.parametrize(
    "imports, layers",
    [
        pytest.param("import tensorflow.keras.layers as KL", "KL", id="module-alias"),
        pytest.param("from tensorflow.keras import layers as L", "L", id="from-import-alias"),
        pytest.param("from tensorflow import keras", "keras.layers", id="tensorflow-keras"),
        pytest.param("import keras", "keras.layers", id="keras-3"),
        pytest.param("import tensorflow as tf", "tf.keras.layers", id="tf-dot-keras"),
    ],
)
def test_keras_spellings_reach_the_same_layer(imports: str, layers: str) -> None:
    source = f"{imports}\n\nbn = {layers}.BatchNormalization(momentum=0.1)\n"
    assert codes_at(source) == [("BN306", 3)]


# ----- counts --------------------------------------------------------------------------------

C, D = Count.symbol("c"), Count.symbol("d")


@pytest.mark.parametrize(
    ("left", "right", "differs"),
    [
        pytest.param(C, C.scale(Fraction(2)), True, id="c-vs-2c"),
        pytest.param(C.scale(Fraction(4)), C, True, id="4c-vs-c"),
        pytest.param(C + Count.number(1), C, True, id="c+1-vs-c"),
        pytest.param(C, C + D, True, id="c-vs-c+d"),
        pytest.param(Count.number(64), Count.number(32), True, id="64-vs-32"),
        pytest.param(C, C, False, id="same-symbol"),
        pytest.param(C + C, C.scale(Fraction(2)), False, id="c+c-vs-2c"),
        pytest.param(C, D, False, id="distinct-symbols-may-be-equal"),
        pytest.param(C.scale(Fraction(2)), C + Count.number(1), False, id="equal-when-c-is-1"),
        pytest.param(Count.number(64), Count.number(64), False, id="same-number"),
        pytest.param(C, Count.number(64), False, id="symbol-vs-number"),
    ],
)
def test_count_differs_from(left: Count, right: Count, differs: bool) -> None:
    assert left.differs_from(right) is differs
    assert right.differs_from(left) is differs


# ----- across files --------------------------------------------------------------------------

BLOCKS = '''\
import torch.nn as nn


def conv_bn(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3), nn.BatchNorm2d(o))


def make_bn(c):
    return nn.BatchNorm2d(c)
'''

NET = '''\
import torch.nn as nn

from models.blocks import conv_bn

from .blocks import make_bn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16)
        self.conv = nn.Conv2d(16, 32, 3, padding=1)
        self.bn = make_bn(32)

    def forward(self, x):
        return self.bn(self.conv(self.stem(x))).relu()
'''
NET_CONV_LINE = 12


def write_package(root: Path, name: str, modules: dict[str, str]) -> Path:
    """A package `proj/<name>/` under root with an empty `__init__.py` and these modules."""
    package = root / "proj" / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for module, source in modules.items():
        (package / f"{module}.py").write_text(source)
    return package


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return write_package(tmp_path, "models", {"blocks": BLOCKS, "net": NET})


def _findings(run: RunResult) -> dict[str, list[tuple[str, int]]]:
    return {Path(result.path).name: [(d.code, d.line) for d in result.diagnostics] for result in run.results}


def _lint(package: Path, use_cache: bool) -> RunResult:
    options = RunOptions(jobs=1, use_cache=use_cache, cache_dir=package.parent.parent / "cache")
    run = lint_paths([str(package)], load_config(package.parent), options)
    if not use_cache:
        assert_each_file_alone_gets_the_same(run.results, package.parent)
    return run


def test_findings_depend_on_imported_helpers(package: Path) -> None:
    assert _findings(_lint(package, use_cache=False)) == {
        "__init__.py": [],
        "blocks.py": [("BN304", 5)],  # conv_bn's biased conv, reported where it is written
        "net.py": [("BN304", NET_CONV_LINE)],  # self.conv feeds the BN that make_bn() builds
    }


def test_linted_alone_the_helper_is_unknown(package: Path) -> None:
    assert codes_at((package / "net.py").read_text(), "net.py") == []


def _record_linted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the names of the files actually analysed (not answered from the cache)."""
    linted: list[str] = []
    original = engine._lint_one

    def recording(linter: engine.Linter, job: engine._Job) -> tuple[FileResult, list[str]]:
        linted.append(job.path.name)
        return original(linter, job)

    monkeypatch.setattr(engine, "_lint_one", recording)
    return linted


def test_cache_gives_identical_results_and_skips_work(package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _findings(_lint(package, use_cache=True))
    linted = _record_linted(monkeypatch)
    assert _findings(_lint(package, use_cache=True)) == first
    assert linted == []


def test_editing_an_imported_module_invalidates_dependents(package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _findings(_lint(package, use_cache=True))["net.py"] == [("BN304", NET_CONV_LINE)]
    (package / "blocks.py").write_text(BLOCKS.replace("return nn.BatchNorm2d(c)", "return nn.Identity()"))
    linted = _record_linted(monkeypatch)
    assert _findings(_lint(package, use_cache=True))["net.py"] == []
    assert sorted(linted) == ["blocks.py", "net.py"]  # __init__.py depends on nothing: still cached


def test_editing_an_imported_module_within_one_process(package: Path) -> None:
    assert _findings(_lint(package, use_cache=False))["net.py"] == [("BN304", NET_CONV_LINE)]
    (package / "blocks.py").write_text(BLOCKS.replace("return nn.BatchNorm2d(c)", "return nn.Identity()"))
    assert _findings(_lint(package, use_cache=False))["net.py"] == []


def test_glu_halves_channels_so_counts_do_not_pass_through_it() -> None:
    source = """
        import torch.nn as nn

        gated = nn.Sequential(nn.Conv1d(16, 64, 3, bias=False), nn.GLU(dim=1), nn.BatchNorm1d(32))
    """
    assert codes_at(source) == []


SETTINGS = """\
BN_MOMENTUM = 0.99
STEM_WIDTH = 64
"""

STEM = """\
import torch.nn as nn

from . import settings
from .settings import BN_MOMENTUM, STEM_WIDTH


class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, STEM_WIDTH, 3, bias=False)
        self.bn = nn.BatchNorm2d(32, momentum=BN_MOMENTUM)
        self.head_bn = nn.BatchNorm1d(10, momentum=settings.BN_MOMENTUM)

    def forward(self, x):
        return self.bn(self.conv(x))
"""


def test_constants_imported_from_another_module_are_evaluated(tmp_path: Path) -> None:
    package = write_package(tmp_path, "nets", {"settings": SETTINGS, "stem": STEM})
    assert _findings(_lint(package, use_cache=True))["stem.py"] == [("BN302", 11), ("BN306", 11), ("BN306", 12)]
    # The constants module is a dependency: fixing it there clears the findings on the next run.
    (package / "settings.py").write_text(SETTINGS.replace("0.99", "0.01").replace("64", "32"))
    assert _findings(_lint(package, use_cache=True))["stem.py"] == []


CONV_HELPERS = """\
import torch.nn as nn


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1)


def conv1x1(in_planes, out_planes):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1)
"""

BLOCK = """\
import torch.nn as nn

from .helpers import conv1x1, conv3x3


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.proj = conv1x1(planes, planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.proj(out))
"""

# Names no batch norm, so it is not analysed: its use of conv3x3 is unknown.
HEAD_WITHOUT_BN = """\
import torch.nn as nn
from nets.helpers import conv3x3


class Head(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = conv3x3(c, c)

    def forward(self, x):
        return self.conv(x).relu()
"""


@pytest.fixture
def helpers_package(tmp_path: Path) -> Path:
    return write_package(tmp_path, "nets", {"helpers": CONV_HELPERS, "block": BLOCK})


def test_a_helper_conv_feeding_bn_in_another_file_is_reported_at_the_helper(helpers_package: Path) -> None:
    findings = _findings(_lint(helpers_package, use_cache=True))
    assert findings["helpers.py"] == [("BN304", 5)]  # conv3x3's Conv2d; conv1x1 feeds a ReLU
    assert findings["block.py"] == []
    assert _findings(_lint(helpers_package, use_cache=True)) == findings  # the same from the cache


def test_a_helper_also_used_before_an_activation_is_not_reported(helpers_package: Path) -> None:
    (helpers_package / "head.py").write_text(BLOCK.replace("self.relu(self.bn1(self.conv1(x)))", "self.conv1(x)"))
    assert _findings(_lint(helpers_package, use_cache=False))["helpers.py"] == []


def test_an_importer_that_was_not_analysed_keeps_the_helper_unreported(helpers_package: Path) -> None:
    (helpers_package / "head.py").write_text(HEAD_WITHOUT_BN)
    assert _findings(_lint(helpers_package, use_cache=False))["helpers.py"] == []


def test_a_finding_established_across_files_is_fixed_by_unsafe_fixes(helpers_package: Path) -> None:
    options = RunOptions(jobs=1, use_cache=False, fix=FixMode.UNSAFE)
    run = lint_paths([str(helpers_package)], load_config(helpers_package.parent), options)
    assert run.fixed_count == 1
    assert "padding=1, bias=False)" in (helpers_package / "helpers.py").read_text()
    assert _findings(_lint(helpers_package, use_cache=False))["helpers.py"] == []


def test_a_noqa_that_suppresses_a_finding_established_across_files_is_not_unused(helpers_package: Path) -> None:
    helpers = helpers_package / "helpers.py"
    helpers.write_text(CONV_HELPERS.replace("padding=1)", "padding=1)  # noqa: BN304"))
    config = load_config(helpers_package.parent).with_overrides(extend_select=["BN001"])
    run = lint_paths([str(helpers_package)], config, RunOptions(jobs=1, use_cache=False))
    assert _findings(run)["helpers.py"] == []  # suppressed, and the directive is used
    helpers.write_text(CONV_HELPERS.replace("kernel_size=1)", "kernel_size=1)  # noqa: BN304"))
    run = lint_paths([str(helpers_package)], config, RunOptions(jobs=1, use_cache=False))
    assert _findings(run)["helpers.py"] == [("BN304", 5), ("BN001", 9)]  # conv1x1 feeds no batch norm
