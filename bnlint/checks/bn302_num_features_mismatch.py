"""BN302 num-features-mismatch: BN expects a different channel count than it receives."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.checks.rewrite import replace_value
from bnlint.diagnostics import Applicability
from bnlint.semantics.layers import Framework, Kind
from bnlint.semantics.queries import channel_source, has_unknown_arguments, is_batch_norm
from bnlint.semantics.values import UNKNOWN, Const, Count, Layer, as_count, as_number

def _shown(context: CheckContext, arg: cst.Arg | None, count: Count) -> str:
    """A channel count as written, with its value when that differs: `STEM_CHANNELS (64)`."""
    value = str(int(count.concrete)) if count.concrete is not None and count.concrete.denominator == 1 else None
    if arg is None or arg.star:
        return value or "?"
    written = context.source(arg.value)
    return f"{written} ({value})" if value and value != written else written


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
            if channels is None:
                continue
            condition = ""
            if not expected.differs_from(channels):
                # Not different for every value: report it when the default arguments disagree.
                with_defaults = expected.with_defaults(), channels.with_defaults()
                if None in with_defaults or with_defaults[0] == with_defaults[1]:
                    continue
                condition = f" (with the default arguments: {int(with_defaults[0])} vs {int(with_defaults[1])})"
            given = bn.args[bn.spec.num_features]
            produced = source.args.get(parameter)
            message = (
                f"{bn.spec.name}({_shown(context, given.node, expected)}) is fed "
                f"{_shown(context, produced.node if produced else None, channels)} channels by {source.spec.name}"
                f"{condition}"
            )
            yield Finding(self.code, bn.node, message, self._fix(given.node, produced.node if produced else None))
            return

    def _fix(self, given: cst.Arg | None, produced: cst.Arg | None) -> NodeFix | None:
        if given is None or produced is None or not isinstance(produced.value, cst.Integer):
            return None
        return NodeFix(Applicability.SAFE, f"Use num_features={produced.value.value}",
                       (replace_value(given, produced.value.value),))

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
            if data_format is UNKNOWN:  # not written: Keras' default image_data_format, channels_last
                data_format = Const(None)
            if not isinstance(data_format, Const) or data_format.value not in (None, "channels_last", "channels_first"):
                continue
            rank = tensor.rank or source.spec.rank
            channels_first = data_format.value == "channels_first" and rank > 2
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
