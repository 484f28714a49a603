"""BN305 dropout-before-bn: dropout feeding straight into BN shifts its variance."""

from __future__ import annotations

from collections.abc import Iterator

from bnlint.checks import Check, CheckContext, Finding
from bnlint.semantics.catalogue.layers import Kind
from bnlint.semantics.interp.values import Layer, Op, Tensor, as_number
from bnlint.semantics.questions.channels import is_batch_norm


def _dropout_name(tensor: Tensor) -> str | None:
    producer = tensor.producer
    if isinstance(producer, Op) and producer.name == "dropout":
        return "dropout"
    if isinstance(producer, Layer) and producer.spec.kind is Kind.DROPOUT:
        rate = as_number(producer.arg(producer.spec.params[0])) if producer.spec.params else None
        if rate == 0:  # literally, or by the default of a parameter (timm's `drop=0.`)
            return None  # p=0 drops nothing: no variance shift
        return producer.spec.name
    return None


class DropoutBeforeBn(Check):
    code = "BN305"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        for bn in context.facts.own_layers():
            if not is_batch_norm(bn):
                continue
            for tensor in bn.inputs:
                dropout = _dropout_name(tensor)
                if dropout is not None:
                    message = (
                        f"{bn.spec.name} follows {dropout} directly: its statistics see dropout-scaled "
                        "activations in training but not at inference"
                    )
                    yield Finding(self.code, bn.node, message)
                    break
