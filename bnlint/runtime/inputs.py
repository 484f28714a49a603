"""What a model is fed: its positional and keyword arguments, each a float array or integer
token ids of a given shape, batch first, perhaps nested (an LSTM state `(h, c)`, a list of
Keras inputs). Framework-free; spelled `N,C,H,W`, `N,T:int` or `name=N,H` on the command
line and in [tool.bnlint.verify]."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bnlint.input_specs import split_spec

DEFAULT_TOKENS = 2  # ids for an integer input whose vocabulary nothing names


@dataclass(frozen=True)
class InputSpec:
    """One array: its shape (batch first) and, for integer token ids, the vocabulary size."""

    shape: tuple[int, ...]
    tokens: int = 0  # > 0: integers in [0, tokens); 0: floats

    def __str__(self) -> str:
        return ",".join(map(str, self.shape)) + (":int" if self.tokens else "")


Tree = Any  # an InputSpec / np.ndarray, or a tuple, list or dict of them


def tree_map(function: Callable[[Any], Any], tree: Tree) -> Tree:
    if isinstance(tree, (tuple, list)):
        return type(tree)(tree_map(function, item) for item in tree)
    if isinstance(tree, Mapping):
        return {key: tree_map(function, item) for key, item in tree.items()}
    return function(tree)


def leaves(tree: Tree) -> list[Any]:
    found: list[Any] = []
    tree_map(found.append, tree)
    return found


@dataclass
class Batch:
    """The arguments of one forward call, as numpy arrays."""

    args: tuple[Tree, ...]
    kwargs: dict[str, Tree] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(leaves((self.args, self.kwargs))[0].shape[0])

    def map(self, function: Callable[[np.ndarray], np.ndarray]) -> Batch:
        return Batch(tree_map(function, self.args), tree_map(function, self.kwargs))

    def rows(self, start: int, stop: int) -> Batch:
        return self.map(lambda array: array[start:stop])

    def joined(self, other: Batch) -> Batch:
        """This batch's samples followed by `other`'s."""
        pairs = iter(leaves((other.args, other.kwargs)))
        return self.map(lambda array: np.concatenate([array, next(pairs)]))

    def shards(self, parts: int) -> list[Batch]:
        """Split along the batch as DataParallel / DistributedDataParallel scatter it."""
        bounds = np.linspace(0, self.size, parts + 1).astype(int)
        return [self.rows(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]


@dataclass(frozen=True)
class Inputs:
    """The arguments a model is fed and where that came from. `cell`: the model is a
    recurrent cell (it takes a state), so one call is one time step."""

    args: tuple[Tree, ...]
    kwargs: tuple[tuple[str, Tree], ...] = ()
    source: str = ""
    cell: bool = False
    inferred: bool = False  # guessed by bnlint, not given by the user

    @property
    def shape(self) -> tuple[int, ...]:
        """The first array's shape, as reports show it."""
        return leaves((self.args, dict(self.kwargs)))[0].shape

    def describe(self) -> str:
        parts = [_shown(arg) for arg in self.args] + [f"{name}={_shown(arg)}" for name, arg in self.kwargs]
        return ", ".join(parts)

    def batch(self, size: int | None = None, seed: int = 0) -> Batch:
        """Random arguments with `size` samples (default: the specified batch)."""
        rng = np.random.default_rng(seed)

        def array(spec: InputSpec) -> np.ndarray:
            shape = (size or spec.shape[0], *spec.shape[1:])
            if spec.tokens:
                return rng.integers(0, spec.tokens, shape)
            return rng.standard_normal(shape).astype(np.float32)

        return Batch(tree_map(array, self.args), tree_map(array, dict(self.kwargs)))


def _shown(tree: Tree) -> str:
    if isinstance(tree, InputSpec):
        return f"({', '.join(map(str, tree.shape))}){' int' if tree.tokens else ''}"
    if isinstance(tree, Mapping):
        return "{" + ", ".join(f"{key}: {_shown(item)}" for key, item in tree.items()) + "}"
    return "[" + ", ".join(_shown(item) for item in tree) + "]"


def parse_spec(text: str) -> tuple[str | None, InputSpec]:
    """`8,3,32,32`, `8,20:int` (token ids) or `mask=8,20` → (keyword or None, spec)."""
    keyword, shape, tokens = split_spec(text)
    return keyword, InputSpec(shape, DEFAULT_TOKENS if tokens else 0)


def inputs_from_specs(texts: list[str], source: str) -> Inputs:
    """Inputs from `--input-shape` values (or their configured spelling): positional in order."""
    args: list[InputSpec] = []
    kwargs: list[tuple[str, InputSpec]] = []
    for text in texts:
        keyword, spec = parse_spec(text)
        if keyword is None:
            args.append(spec)
        else:
            kwargs.append((keyword, spec))
    return Inputs(tuple(args), tuple(kwargs), source)


def inputs_from_value(value: Any, source: str) -> Inputs:
    """Inputs shaped like an example value: an array, a tuple or list of them (positional),
    or a dict (keyword). Integer arrays stay integer token ids below their largest value."""

    def spec(array: Any) -> InputSpec:
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.integer):
            return InputSpec(tuple(array.shape), max(int(array.max(initial=0)) + 1, DEFAULT_TOKENS))
        return InputSpec(tuple(array.shape))

    if isinstance(value, Mapping):
        return Inputs((), tuple((str(key), tree_map(spec, item)) for key, item in value.items()), source)
    if isinstance(value, tuple):
        return Inputs(tuple(tree_map(spec, item) for item in value), (), source)
    return Inputs((tree_map(spec, value),), (), source)


def with_vocabulary(inputs: Inputs, tokens: int) -> Inputs:
    """Integer inputs given without a vocabulary (`:int`) draw ids below the model's."""

    def resized(spec: InputSpec) -> InputSpec:
        return InputSpec(spec.shape, tokens) if spec.tokens == DEFAULT_TOKENS else spec

    return replace(inputs, args=tree_map(resized, inputs.args), kwargs=tuple((k, resized(v)) for k, v in inputs.kwargs))
