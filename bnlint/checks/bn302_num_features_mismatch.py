"""BN302 num-features-mismatch: BN expects a different channel count than it receives."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.checks.rewrite import with_value
from bnlint.diagnostics import Applicability
from bnlint.semantics.layers import Framework, Kind
from bnlint.semantics.queries import channel_source, has_unknown_arguments, is_batch_norm
from bnlint.semantics.values import Const, Layer, as_count, as_number

_CHANNELS_FIRST_AXES = {1}


class NumFeaturesMismatch(Check):
    code = "BN302"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        for bn in context.model.own_layers():
            if not is_batch_norm(bn) or has_unknown_arguments(bn):
                continue
            if bn.spec.framework is Framework.TORCH:
                yield from self._torch(bn, context)
            else:
                yield from self._keras_axis(bn, context)

    def _torch(self, bn: Layer, context: CheckContext) -> Iterator[Finding]:
        expected = as_count(bn.arg(bn.spec.num_features)) if bn.spec.num_features else None
        if expected is None:
            return
        for tensor in bn.inputs:
            source = channel_source(tensor)
            if source is None or has_unknown_arguments(source):
                continue
            parameter = source.spec.out_channels or source.spec.num_features
            channels = as_count(source.arg(parameter))
            if channels is None or not expected.differs_from(channels):
                continue
            given = bn.args[bn.spec.num_features]
            produced = source.args.get(parameter)
            message = (
                f"{bn.spec.name}({context.source(given.node.value) if given.node else '?'}) receives "
                f"{context.source(produced.node.value) if produced and produced.node else channels} channels "
                f"from {source.spec.name}"
            )
            yield Finding(self.code, bn.node, message, self._fix(given.node, produced.node if produced else None))
            return

    def _fix(self, given: cst.Arg | None, produced: cst.Arg | None) -> NodeFix | None:
        if given is None or produced is None or not isinstance(produced.value, cst.Integer):
            return None
        replacement = with_value(given, produced.value.value)
        return NodeFix(Applicability.SAFE, f"Use num_features={produced.value.value}", ((given, replacement),))

    def _keras_axis(self, bn: Layer, context: CheckContext) -> Iterator[Finding]:
        if bn.spec.functional:
            return
        axis = as_number(bn.arg("axis"))
        if axis is None:
            return
        for tensor in bn.inputs:
            source = channel_source(tensor)
            if source is None or source.spec.kind is not Kind.CONV or not source.spec.rank:
                continue
            data_format = source.arg("data_format")
            if not isinstance(data_format, Const) or data_format.value not in (None, "channels_last", "channels_first"):
                continue
            rank = source.spec.rank
            channels_first = data_format.value == "channels_first"
            valid = {1, 1 - rank} if channels_first else {-1, rank - 1}
            if int(axis) in valid:
                continue
            layout = "channels_first (channel axis 1)" if channels_first else "channels_last (channel axis -1)"
            message = (
                f"BatchNormalization(axis={int(axis)}) normalizes a non-channel axis: "
                f"{source.spec.name} produces {layout}"
            )
            yield Finding(self.code, bn.node, message)
            return
