"""BN302 num-features-mismatch: BN expects a different channel count than it receives."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.checks.rewrite import replace_value
from bnlint.diagnostics import Applicability
from bnlint.semantics.catalogue.layers import Framework
from bnlint.semantics.interp.values import Count, Layer, Tensor, as_count
from bnlint.semantics.questions.channels import (
    channel_source,
    feature_counts,
    has_unknown_arguments,
    is_batch_norm,
    keras_channel_axes,
    tensor_channels,
)


def _shown(context: CheckContext, arg: cst.Arg | None, count: Count) -> str:
    """A channel count as written, with its value when that differs: `STEM_CHANNELS (64)`."""
    value = str(int(count.concrete)) if count.concrete is not None and count.concrete.denominator == 1 else None
    if arg is None or arg.star:
        return value or str(count)
    written = context.source(arg.value)
    return f"{written} ({value})" if value and value != written else written


class NumFeaturesMismatch(Check):
    code = "BN302"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        for bn in context.facts.own_layers():
            if not is_batch_norm(bn) or has_unknown_arguments(bn):
                continue
            if bn.spec.framework is Framework.TORCH:
                yield from self._torch(bn, context)
            else:
                yield from self._keras_axis(bn, context)

    def _torch(self, bn: Layer, context: CheckContext) -> Iterator[Finding]:
        for tensor in bn.inputs:
            source = channel_source(tensor)
            if source is None:
                yield from self._after_op(bn, tensor, context)
                continue
            counts = feature_counts(bn, source)
            if counts is None:
                continue
            expected, channels = counts
            condition = ""
            if not expected.differs_from(channels):
                # Not different for every value: report it when the default arguments disagree.
                with_defaults = expected.disagrees_under_defaults(channels)
                if with_defaults is None:
                    continue
                condition = f" (with the default arguments: {with_defaults[0]} vs {with_defaults[1]})"
            given = bn.args[bn.spec.num_features]
            produced = source.args.get(source.spec.out_channels or source.spec.num_features or "")
            message = (
                f"{bn.spec.name}({_shown(context, given.node, expected)}) is fed "
                f"{_shown(context, produced.node if produced else None, channels)} channels by {source.spec.name}"
                f"{condition}"
            )
            yield Finding(self.code, bn.node, message, self._fix(given.node, produced.node if produced else None))
            return

    def _after_op(self, bn: Layer, tensor: Tensor, context: CheckContext) -> Iterator[Finding]:
        """A BN fed by an op that fixes the channel count itself (`torch.cat`)."""
        expected = as_count(bn.arg(bn.spec.num_features)) if bn.spec.num_features else None
        traced = tensor_channels(tensor)
        if expected is None or traced is None or not expected.differs_from(traced[0]):
            return
        channels, origin = traced
        given = bn.args[bn.spec.num_features]
        message = (f"{bn.spec.name}({_shown(context, given.node, expected)}) is fed "
                   f"{_shown(context, None, channels)} channels by {origin}")
        yield Finding(self.code, bn.node, message)

    def _fix(self, given: cst.Arg | None, produced: cst.Arg | None) -> NodeFix | None:
        if given is None or produced is None or not isinstance(produced.value, cst.Integer):
            return None
        return NodeFix(Applicability.SAFE, f"Use num_features={produced.value.value}",
                       (replace_value(given, produced.value.value),))

    def _keras_axis(self, bn: Layer, context: CheckContext) -> Iterator[Finding]:
        if bn.spec.functional:
            return
        for tensor in bn.inputs:
            source = channel_source(tensor)
            axes = keras_channel_axes(bn, source, tensor.rank) if source is not None else None
            if source is None or axes is None or axes[0] in axes[1]:
                continue
            axis, _, channels_first = axes
            layout = "channels_first (channel axis 1)" if channels_first else "channels_last (channel axis -1)"
            message = f"BatchNormalization(axis={axis}) normalizes a non-channel axis: {source.spec.name} produces {layout}"
            yield Finding(self.code, bn.node, message)
            return
