"""The layer catalogue checked against the real torch and keras signatures.

bnlint binds user arguments to parameters by the catalogue's order and trusts its defaults
without importing anything, so a wrong entry silently mis-binds user code. Each check runs
only when its framework is installed; a name the installed version lacks is skipped.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import pytest

from bnlint.semantics.catalogue.layers import CATALOGUE, Framework, Kind, LayerSpec

# Set before keras is first imported: keras 3 picks its backend at import time.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TORCH_SPECS = [spec for spec in CATALOGUE.values() if spec.framework is Framework.TORCH]
KERAS_SPECS = [spec for spec in CATALOGUE.values() if spec.framework is Framework.KERAS]

# Catalogue entries known to disagree with the installed frameworks, by (check, framework, name).
# Each is a strict xfail, so fixing the entry in layers.py makes the test ask for its removal.
POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
BATCH, CHANNELS, SPATIAL = 2, 4, 3
# Constructor arguments for the forward passes, by parameter name.
CONSTRUCTOR_VALUES = {
    "in_channels": CHANNELS, "in_features": CHANNELS, "in1_features": CHANNELS, "in2_features": CHANNELS,
    "out_channels": 2, "out_features": 2, "filters": 2, "kernel_size": 1,
}


def cases(specs: Iterable[LayerSpec]) -> list[Any]:
    """One test case per entry, named `framework.Layer`."""
    return [pytest.param(spec, id=f"{spec.framework.value}.{spec.name}") for spec in specs]


def import_torch() -> ModuleType:
    return pytest.importorskip("torch")


def import_keras() -> ModuleType:
    return pytest.importorskip("keras")


def resolve(spec: LayerSpec) -> Any:
    """The real class or function an entry describes; skips when the installed version has none."""
    if spec.framework is Framework.TORCH:
        torch = import_torch()
        where = spec.module or ("torch.nn.functional" if spec.functional else "torch.nn")
        namespace = importlib.import_module(where)
        version = f"torch {torch.__version__}"
    elif spec.functional:
        # The TF1 functional layer; keras 3 removed it (its lazy loader raises AttributeError).
        tf = pytest.importorskip("tensorflow")
        namespace, where, version = tf.compat.v1.layers, "tensorflow.compat.v1.layers", f"tensorflow {tf.__version__}"
    else:
        keras = import_keras()
        namespace, where = (keras, "keras") if spec.kind is Kind.CONTAINER else (keras.layers, "keras.layers")
        version = f"keras {keras.__version__}"
    try:
        return getattr(namespace, spec.name)
    except AttributeError as error:
        pytest.skip(f"{version} has no {where}.{spec.name}: {error}")


def parameters(target: Callable[..., Any]) -> list[inspect.Parameter]:
    """A class's constructor parameters after `self`, or a function's parameters."""
    if inspect.isclass(target):
        return list(inspect.signature(target.__init__).parameters.values())[1:]
    return list(inspect.signature(target).parameters.values())


def positional_names(target: Callable[..., Any]) -> list[str]:
    return [param.name for param in parameters(target) if param.kind in POSITIONAL]


@pytest.mark.parametrize("spec", cases(CATALOGUE.values()))
def test_params_are_the_leading_positional_parameters(spec: LayerSpec) -> None:
    real = positional_names(resolve(spec))
    assert real[: len(spec.params)] == list(spec.params), f"real positional parameters: {real}"


@pytest.mark.parametrize("spec", cases([spec for spec in CATALOGUE.values() if spec.defaults]))
def test_defaults_match_the_real_defaults(spec: LayerSpec) -> None:
    real = {param.name: param.default for param in parameters(resolve(spec))}
    for name, expected in spec.defaults.items():
        assert name in real, f"no parameter {name!r}; real parameters: {list(real)}"
        # Compare types too: a catalogue `1` for a real `True` would pass `==`.
        assert (type(real[name]), real[name]) == (type(expected), expected), f"default of {name!r}"


NAMED_PARAMETER_FIELDS = ("out_channels", "num_features", "bias", "activation")


def names_a_parameter(spec: LayerSpec) -> bool:
    return any(getattr(spec, field) for field in NAMED_PARAMETER_FIELDS)


@pytest.mark.parametrize("spec", cases(filter(names_a_parameter, CATALOGUE.values())))
def test_named_parameters_exist(spec: LayerSpec) -> None:
    real = [param.name for param in parameters(resolve(spec))]
    for field in NAMED_PARAMETER_FIELDS:
        name = getattr(spec, field)
        assert name is None or name in real, f"{field}={name!r} is not a parameter of {real}"


def torch_kind_bases() -> dict[Kind, type]:
    """Base classes that decide a torch layer's kind."""
    nn = import_torch().nn
    return {
        Kind.BATCH_NORM: nn.modules.batchnorm._BatchNorm,
        Kind.CONV: nn.modules.conv._ConvNd,
        Kind.DROPOUT: nn.modules.dropout._DropoutNd,
    }


@pytest.mark.parametrize("spec", cases([spec for spec in TORCH_SPECS if not spec.functional]))
def test_torch_kind_agrees_with_the_class_hierarchy(spec: LayerSpec) -> None:
    layer = resolve(spec)
    for kind, base in torch_kind_bases().items():
        assert issubclass(layer, base) == (spec.kind is kind), f"kind {spec.kind.value}, {base.__name__} subclass?"


@pytest.mark.parametrize("spec", cases([spec for spec in KERAS_SPECS if not spec.functional]))
def test_keras_batch_norm_kind_agrees_with_the_class_hierarchy(spec: LayerSpec) -> None:
    layer = resolve(spec)
    is_batch_norm = issubclass(layer, import_keras().layers.BatchNormalization)
    assert is_batch_norm == (spec.kind is Kind.BATCH_NORM), f"kind {spec.kind.value}"


def public_subclasses(namespace: ModuleType, base: type) -> set[str]:
    return {
        name for name, value in vars(namespace).items()
        if not name.startswith("_") and inspect.isclass(value) and issubclass(value, base)
    }


def catalogued(framework: Framework, kind: Kind) -> set[str]:
    return {spec.name for spec in CATALOGUE.values() if spec.framework is framework and spec.kind is kind}


@pytest.mark.parametrize("kind", [Kind.BATCH_NORM, Kind.CONV])
def test_every_torch_batch_norm_and_conv_class_is_catalogued(kind: Kind) -> None:
    real = public_subclasses(import_torch().nn, torch_kind_bases()[kind])
    assert real - catalogued(Framework.TORCH, kind) == set()


def test_every_keras_batch_norm_class_is_catalogued() -> None:
    layers = import_keras().layers
    assert public_subclasses(layers, layers.BatchNormalization) - catalogued(Framework.KERAS, Kind.BATCH_NORM) == set()


@pytest.mark.parametrize("spec", cases(TORCH_SPECS))
def test_torch_entry_exists(spec: LayerSpec) -> None:
    """torch does not drop nn names, so an entry it lacks is a catalogue mistake, not a version gap."""
    torch = import_torch()
    namespace = importlib.import_module(spec.module or ("torch.nn.functional" if spec.functional else "torch.nn"))
    assert hasattr(namespace, spec.name), f"torch {torch.__version__} has no {spec.name}"


def construct(layer: type, spec: LayerSpec) -> Any:
    """An instance built by passing CONSTRUCTOR_VALUES positionally, in the catalogue's order."""
    args = []
    for name in spec.params:
        if name not in CONSTRUCTOR_VALUES:
            break
        args.append(CONSTRUCTOR_VALUES[name])
    return layer(*args)


def batched_zeros(torch: ModuleType, rank: int) -> Any:
    """Channels-first zeros: batch, channels, then spatial axes."""
    return torch.zeros(BATCH, CHANNELS, *[SPATIAL] * (rank - 2))


def accepts_rank(layer: type, spec: LayerSpec, rank: int) -> bool:
    torch = import_torch()
    module = layer(CHANNELS) if spec.num_features else layer()  # lazy BN infers its features
    try:
        module.train()(batched_zeros(torch, rank))
    except ValueError:  # torch's `_check_input_dim`
        return False
    return True


# Concrete classes only: the `_BatchNorm` base leaves `_check_input_dim` to its subclasses.
BATCH_NORM_CLASSES = [
    spec for spec in TORCH_SPECS if spec.kind is Kind.BATCH_NORM and not spec.functional and not spec.module
]


@pytest.mark.parametrize("spec", cases(BATCH_NORM_CLASSES))
def test_torch_batch_norm_accepts_exactly_its_ranks(spec: LayerSpec) -> None:
    layer = resolve(spec)
    accepted = tuple(rank for rank in range(2, 6) if accepts_rank(layer, spec, rank))
    assert accepted == spec.bn_ranks


@pytest.mark.parametrize("spec", cases([spec for spec in TORCH_SPECS if spec.rank]))
def test_torch_layer_runs_on_its_rank(spec: LayerSpec) -> None:
    torch = import_torch()
    module = construct(resolve(spec), spec)
    # Bilinear takes two inputs, every other layer one (ConvTranspose's output_size is optional).
    required = [param for param in parameters(module.forward) if param.default is inspect.Parameter.empty]
    inputs = [batched_zeros(torch, spec.rank)] * len(required)
    assert module(*inputs).dim() == spec.rank


@pytest.mark.parametrize("spec", cases([spec for spec in KERAS_SPECS if spec.rank]))
def test_keras_layer_runs_on_its_rank(spec: LayerSpec) -> None:
    keras = import_keras()
    layer = construct(resolve(spec), spec)
    channels_last = (BATCH, *[SPATIAL] * (spec.rank - 2), CHANNELS)
    assert len(layer(keras.ops.zeros(channels_last)).shape) == spec.rank
