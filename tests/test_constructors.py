"""The model constructor catalogue checked against the libraries it describes.

Lookups run everywhere. The other checks read the real code and skip without it:

* keras 3 (installed) and tf-keras 2.21.0 (the pinned source under corpus-real): the table lists
  exactly the exported applications, each under the submodules that export it, and an
  application is YES exactly when its module (or an application module it imports) uses
  `BatchNormalization`. A representative few keras 3 models are also built and counted.
* torchvision 0.29.1 (pinned source): a subprocess imports that source (its C++ operator
  registrations stubbed out), lists every builder and the modules exporting it, and builds one
  builder per table group on the meta device, also with the switches that change its norms;
  this file is that subprocess's script.
* segmentation_models_pytorch 0.6.0, transformers 5.24.0, timm 1.0.31 (pinned sources): the
  names exist, and smp's decoders use batch norm exactly where the table says YES.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bnlint.semantics.catalogue.constructors import (
    _KERAS,
    _KNOWN,
    _SMP,
    _TORCHVISION,
    _ZOOS,
    Presence,
    _keras_names,
    _smp_names,
    _torchvision_names,
    constructor_presence,
)

YES, NO, UNKNOWN = Presence.YES, Presence.NO, Presence.UNKNOWN
CORPUS = Path(__file__).resolve().parents[2] / "corpus-real"
TORCHVISION_SRC = CORPUS / "torchvision-0.29.1"
TF_KERAS_SRC = CORPUS / "tf-keras-2.21.0" / "tf_keras"
SMP_SRC = CORPUS / "segmentation-models-pytorch-0.6.0" / "segmentation_models_pytorch"
TRANSFORMERS_SRC = CORPUS / "transformers-5.24.0" / "transformers"
TIMM_SRC = CORPUS / "timm-1.0.31" / "timm"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not there")
    return path


def entries(table: dict[Presence, dict[str, str]]) -> list[tuple[Presence, str, str]]:
    """(presence, module, name) for every name of a table."""
    return [(presence, where, name) for presence, groups in table.items() for where, names in groups.items() for name in names.split()]


# ---------------------------------------------------------------------------------------------
# Lookups


@pytest.mark.parametrize(
    ("qualname", "expected"),
    [
        ("torchvision.models.resnet50", YES),
        ("torchvision.models.resnet.resnet50", YES),
        ("torchvision.models.mobilenet.mobilenet_v3_small", YES),
        ("torchvision.models.vgg16", NO),
        ("torchvision.models.vgg16_bn", YES),
        ("torchvision.models.vit_b_16", NO),
        ("torchvision.models.convnext_tiny", NO),
        ("torchvision.models.maxvit_t", YES),
        ("torchvision.models.segmentation.deeplabv3_resnet50", YES),
        ("torchvision.models.segmentation.fcn.fcn_resnet50", YES),
        ("torchvision.models.detection.fasterrcnn_resnet50_fpn", UNKNOWN),
        ("torchvision.models.detection.faster_rcnn.fasterrcnn_resnet50_fpn_v2", YES),
        ("torchvision.models.detection.ssd300_vgg16", NO),
        ("torchvision.models.video.r3d_18", YES),
        ("torchvision.models.video.swin3d_t", NO),
        ("torchvision.models.optical_flow.raft_small", NO),
        ("torchvision.models.quantization.resnet50", UNKNOWN),
        ("torchvision.models.quantization.mobilenet.mobilenet_v2", UNKNOWN),
        ("torchvision.models.get_model", UNKNOWN),
        ("keras.applications.ResNet50", YES),
        ("keras.applications.resnet50.ResNet50", YES),
        ("keras.applications.resnet.ResNet101", YES),
        ("tensorflow.keras.applications.MobileNetV3Small", YES),
        ("tf_keras.applications.efficientnet_v2.EfficientNetV2S", YES),
        ("tf_keras.applications.RegNetY320", YES),
        ("keras.applications.ConvNeXtTiny", NO),
        ("tensorflow.keras.applications.vgg16.VGG16", NO),
        ("segmentation_models_pytorch.Unet", YES),
        ("segmentation_models_pytorch.decoders.deeplabv3.DeepLabV3Plus", YES),
        ("segmentation_models_pytorch.FPN", UNKNOWN),
        ("timm.create_model", UNKNOWN),
        ("torch.hub.load", UNKNOWN),
        ("transformers.AutoModelForImageClassification.from_pretrained", UNKNOWN),
    ],
)
def test_presence(qualname: str, expected: Presence) -> None:
    assert constructor_presence(qualname) is expected


@pytest.mark.parametrize(
    "qualname",
    [
        "torchvision.models",
        "torchvision.models.ResNet",  # a class taking blocks, not a builder
        "torchvision.models.resnet.resnet50.x",
        "keras.applications.mobilenet_v3.MobileNetV3Small",  # that submodule exports no models
        "keras.applications.resnet50.ResNet101",
        "torch.nn.BatchNorm2d",
        "resnet50",
    ],
)
def test_other_names_are_no_constructors(qualname: str) -> None:
    assert constructor_presence(qualname) is None


def test_the_lookup_is_the_tables_expanded_without_conflicts() -> None:
    expected = dict.fromkeys(_ZOOS, UNKNOWN)
    for table, expand in ((_TORCHVISION, _torchvision_names), (_KERAS, _keras_names), (_SMP, _smp_names)):
        for presence, where, name in entries(table):
            for qualname in expand(where, name):
                assert expected.setdefault(qualname, presence) is presence, f"{qualname} is listed twice"
    assert _KNOWN == expected


# ---------------------------------------------------------------------------------------------
# keras 3 and tf-keras


def keras3_root() -> Path:
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("keras is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def keras_root(package: str) -> Path:
    """The package directory of keras 3 (installed) or tf-keras (pinned source)."""
    return keras3_root() if package == "keras" else require(TF_KERAS_SRC)


KERAS_PACKAGES = pytest.mark.parametrize("package", ["keras", "tf_keras"])


EXPORT = re.compile(r"from (?:keras|tf_keras)\.src\.applications\.(\w+) import \(?\s*([A-Z]\w*)")


def exports(init: Path) -> dict[str, str]:
    """The applications an API `__init__.py` exports, with their defining module."""
    return {name: module for module, name in EXPORT.findall(init.read_text())}


def keras_table() -> dict[str, Presence]:
    return {name: presence for presence, _, name in entries(_KERAS)}


def keras_submodules() -> set[tuple[str, str]]:
    return {(where, name) for _, where, name in entries(_KERAS) if where}


@KERAS_PACKAGES
def test_keras_table_lists_every_application(package: str) -> None:
    applications = exports(keras_root(package) / "applications" / "__init__.py")
    assert applications, "no applications found: has the API layout changed?"
    assert set(applications) <= set(keras_table())


def test_keras_table_lists_only_real_applications() -> None:
    real = set(exports(keras3_root() / "applications" / "__init__.py"))
    real |= set(exports(require(TF_KERAS_SRC) / "applications" / "__init__.py"))
    assert set(keras_table()) == real


@KERAS_PACKAGES
def test_keras_submodules_export_what_the_table_says(package: str) -> None:
    api = keras_root(package) / "applications"
    found = {(init.parent.name, name) for init in api.glob("*/__init__.py") for name in exports(init)}
    listed = {(where, name) for where, name in keras_submodules() if (api / where).is_dir()}
    assert found == listed


def application_source(src: Path, module: str, package: str) -> str:
    """An application module's source and that of the application modules it imports."""
    text = (src / f"{module}.py").read_text()
    imported = re.findall(rf"from {package}\.src\.applications import (\w+)", text)
    return text + "".join((src / f"{name}.py").read_text() for name in imported)


@KERAS_PACKAGES
def test_keras_presence_matches_the_source(package: str) -> None:
    base = keras_root(package)
    src = base / "src" / "applications"
    table = keras_table()
    found = {
        name: YES if "BatchNormalization" in application_source(src, module, package) else NO
        for name, module in exports(base / "applications" / "__init__.py").items()
    }
    assert found == {name: table[name] for name in found}


# Quick to build, and together they cover BN in plain, depthwise, separable and residual
# blocks (pre- and post-activation) and both LayerNorm and norm-free models.
KERAS_BUILT = ["MobileNet", "MobileNetV3Small", "ResNet50V2", "EfficientNetB0", "Xception", "ConvNeXtTiny", "VGG16"]


@pytest.mark.parametrize("name", KERAS_BUILT)
def test_keras_presence_matches_a_built_model(name: str) -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    shape = (71, 71, 3) if name == "Xception" else (32, 32, 3)  # the smallest inputs allowed
    model = getattr(keras.applications, name)(weights=None, include_top=False, input_shape=shape)
    has_bn = any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert constructor_presence(f"keras.applications.{name}") is (YES if has_bn else NO)


# ---------------------------------------------------------------------------------------------
# torchvision: this file run as a script in a subprocess that imports the pinned source


def torchvision_report(representatives: list[str]) -> dict[str, Any]:
    """List torchvision's builders with the modules exporting each, and derive the presence of
    `representatives` (qualified builder names) by building them."""
    import types

    sys.path.insert(0, str(TORCHVISION_SRC))
    for stub in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules[stub] = types.ModuleType(stub)  # they need the compiled operators
    import importlib
    import inspect
    import pkgutil

    import torch
    import torchvision.models as tvm
    from torch import nn
    from torchvision.models import _api

    # Never download weights: they change no layer types, so load nothing.
    _api.WeightsEnum.get_state_dict = lambda *args, **kwargs: {}  # type: ignore[method-assign]
    nn.Module.load_state_dict = lambda *args, **kwargs: None  # type: ignore[method-assign,assignment,return-value]

    builders = {id(fn): fn for fn in map(_api.get_model_builder, tvm.list_models())}
    names: dict[str, list[str]] = {}
    modules = [tvm] + [importlib.import_module(info.name) for info in pkgutil.walk_packages(tvm.__path__, "torchvision.models.")]
    for module in modules:
        if any(part.startswith("_") for part in module.__name__.split(".")):
            continue
        for attr, value in vars(module).items():
            if id(value) not in builders:
                continue
            if hasattr(module, "__path__") or attr in getattr(module, "__all__", ()) or value.__module__ == module.__name__:
                names.setdefault(f"{value.__module__}.{value.__name__}", []).append(f"{module.__name__}.{attr}")

    def batch_norms(fn: Any, fuse: bool = False, **kwargs: Any) -> int:
        try:
            with torch.device("meta"):
                model = fn(**kwargs)
                if fuse:
                    model.eval().fuse_model()
        except NotImplementedError:  # regnet computes its widths with tensors
            model = fn(**kwargs)
        return sum(isinstance(layer, nn.modules.batchnorm._BatchNorm) for layer in model.modules())

    presences: dict[str, str] = {}
    by_name = {f"{fn.__module__}.{fn.__name__}": fn for fn in builders.values()}
    for qualname in representatives:
        fn = by_name.get(qualname)
        if fn is None:
            presences[qualname] = "no such builder"
            continue
        params = inspect.signature(fn).parameters
        counts = [batch_norms(fn)]
        if "weights_backbone" in params:  # given weights, detection freezes the backbone's BN
            counts.append(batch_norms(fn, weights=None, weights_backbone=None))
        if "quantize" in params:
            # quantize=True runs quantization.utils.quantize_model, which first fuses BN into the
            # convolutions (then calibrates on random data: slow, and impossible on meta tensors).
            counts.append(batch_norms(fn, fuse=True))
        presences[qualname] = "yes" if all(counts) else "no" if not any(counts) else "unknown"
    return {"names": names, "presences": presences}


@pytest.fixture(scope="module")
def torchvision_built() -> dict[str, Any]:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    require(TORCHVISION_SRC)
    # The first builder of each table group: all 121 were built when the table was made.
    representatives = [
        f"torchvision.models.{module}.{names.split()[0]}" for groups in _TORCHVISION.values() for module, names in groups.items()
    ]
    run = subprocess.run(
        [sys.executable, __file__, json.dumps(representatives)], capture_output=True, text=True, timeout=600, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def test_torchvision_table_lists_every_builder_under_every_exported_name(torchvision_built: dict[str, Any]) -> None:
    listed = {
        f"torchvision.models.{module}.{name}": sorted(_torchvision_names(module, name))
        for _, module, name in entries(_TORCHVISION)
    }
    assert listed == {qualname: sorted(names) for qualname, names in torchvision_built["names"].items()}


def test_torchvision_presence_matches_built_models(torchvision_built: dict[str, Any]) -> None:
    table = {f"torchvision.models.{module}.{name}": presence.value for presence, module, name in entries(_TORCHVISION)}
    assert torchvision_built["presences"] == {qualname: table[qualname] for qualname in torchvision_built["presences"]}


# ---------------------------------------------------------------------------------------------
# segmentation_models_pytorch, transformers, timm


def test_smp_table_lists_every_architecture() -> None:
    init = (require(SMP_SRC) / "__init__.py").read_text()
    exported = set(re.findall(r"from \.decoders\.\w+ import (.+)", init))
    architectures = {name.strip() for line in exported for name in line.split(",")}
    assert architectures == {name for _, _, name in entries(_SMP)}
    assert "def create_model(" in init and "import from_pretrained" in init


@pytest.mark.parametrize(("presence", "decoder", "name"), entries(_SMP))
def test_smp_presence_matches_the_decoder(presence: Presence, decoder: str, name: str) -> None:
    package = require(SMP_SRC) / "decoders" / decoder
    assert f"class {name}(" in (package / "model.py").read_text()
    assert re.search(rf"^from \.model import .*\b{name}\b", (package / "__init__.py").read_text(), re.M)
    # YES: the decoder holds batch norm whatever the encoder; UNKNOWN: it depends on the encoder.
    decoder_bn = re.search("batchnorm", (package / "decoder.py").read_text(), re.I) is not None
    assert decoder_bn is (presence is YES)


def test_transformers_auto_models_are_all_listed() -> None:
    source = (require(TRANSFORMERS_SRC) / "models" / "auto" / "modeling_auto.py").read_text()
    auto_classes = set(re.findall(r"^class (Auto\w+)\(", source, re.M))
    listed = {qualname.split(".")[1] for qualname in _ZOOS if qualname.startswith("transformers.")}
    assert listed == auto_classes


def test_timm_exports_create_model() -> None:
    for init in ("__init__.py", "models/__init__.py"):
        assert "create_model as create_model" in (require(TIMM_SRC) / init).read_text()


if __name__ == "__main__":
    print(json.dumps(torchvision_report(json.loads(sys.argv[1]))))
