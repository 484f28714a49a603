"""BN303 bn-dimension-mismatch: BatchNorm1d/2d/3d does not fit the rank of its input."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.diagnostics import Applicability
from bnlint.semantics.catalogue.layers import Framework
from bnlint.semantics.interp.values import Layer, Op, Tensor
from bnlint.semantics.questions.channels import is_batch_norm

# Input rank (batch axis included) -> the BatchNorm variant that accepts it.
_VARIANT_FOR_RANK = {2: "1d", 3: "1d", 4: "2d", 5: "3d"}
_RANK_SHAPES = {2: "(N, C)", 3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}


def _origin(tensor: Tensor) -> str:
    """What gave the tensor its rank, for the message: the last shape op or the producer."""
    if tensor.via:
        return tensor.via[-1]
    if isinstance(tensor.producer, Layer):
        return tensor.producer.spec.name
    if isinstance(tensor.producer, Op):
        return tensor.producer.name
    return "its input"


class BnDimensionMismatch(Check):
    code = "BN303"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        by_node: dict[cst.Call, list[Layer]] = {}
        for layer in context.facts.own_layers():
            if is_batch_norm(layer) and layer.spec.framework is Framework.TORCH and not layer.spec.functional:
                by_node.setdefault(layer.node, []).append(layer)
        for node, instances in by_node.items():
            spec = instances[0].spec
            wrong = {
                (tensor.rank, _origin(tensor))
                for layer in instances
                for tensor in layer.inputs
                if tensor.rank is not None and tensor.rank not in spec.bn_ranks
            }
            if not wrong:
                continue
            rank, producer = min(wrong)
            message = (
                f"{spec.name} expects {' or '.join(_RANK_SHAPES[r] for r in spec.bn_ranks)} input, but {producer} "
                f"gives {_RANK_SHAPES.get(rank, f'rank-{rank}')}"
            )
            ranks = {r for r, _ in wrong}
            yield Finding(self.code, node, message, self._fix(node, spec.name, ranks))

    def _fix(self, node: cst.Call, name: str, ranks: set[int]) -> NodeFix | None:
        """Swap the class when every use agrees on the rank and the class is spelled `mod.BatchNormXd`."""
        if len(ranks) != 1 or not isinstance(node.func, cst.Attribute) or node.func.attr.value != name:
            return None
        variant = _VARIANT_FOR_RANK.get(ranks.pop())
        if variant is None:
            return None
        replacement_name = name[: -len("2d")] + variant
        new_func = node.func.with_changes(attr=cst.Name(replacement_name))
        return NodeFix(Applicability.SAFE, f"Use {replacement_name}", ((node.func, new_func),))
