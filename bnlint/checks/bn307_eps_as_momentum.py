"""BN307 eps-as-momentum: a batch-norm eps that cannot be meant as an epsilon."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.checks.rewrite import without_argument
from bnlint.diagnostics import Applicability
from bnlint.semantics.catalogue.layers import Framework
from bnlint.semantics.interp.values import as_count, as_number
from bnlint.semantics.questions.arguments import ArgumentSite, batch_norm_arguments, complement

# Real code uses eps up to 1e-3, rarely 1e-2 (the corpus has nothing larger): 0.1 is ten
# times that, and the smallest value a ported momentum takes (PyTorch's default).
SMALLEST_IMPLAUSIBLE_EPS = 0.1


class EpsAsMomentum(Check):
    code = "BN307"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        for site in batch_norm_arguments(context.facts, ("eps", "epsilon")):
            channel_count = self._is_channel_count(site)
            eps = as_number(site.value)
            if channel_count or (eps is not None and eps >= SMALLEST_IMPLAUSIBLE_EPS and not self._deliberate(site)):
                yield self._finding(site, eps, channel_count)

    @staticmethod
    def _deliberate(site: ArgumentSite) -> bool:
        """`BatchNormalization(momentum=0.9, epsilon=1.0)`: both slots named by the author, so
        the eps is no momentum put in the wrong place (a numerics test's round number)."""
        arg = site.anchor
        return isinstance(arg, cst.Arg) and arg.keyword is not None and "momentum" in site.arguments

    @staticmethod
    def _is_channel_count(site: ArgumentSite) -> bool:
        """`BatchNorm2d(n, n)`: the eps is the layer's own channel count."""
        parameter = site.spec.num_features
        features = site.arguments.get(parameter) if parameter else None
        if features is None:
            return False
        eps, channels = as_count(site.value), as_count(features.value)
        return eps is not None and channels is not None and eps == channels

    def _finding(self, site: ArgumentSite, eps: float | None, channel_count: bool) -> Finding:
        keras = site.spec.framework is Framework.KERAS
        slot = "epsilon" if keras else "eps"
        written = _code(site)
        if eps is not None and not isinstance(site.expression, (cst.Float, cst.Integer)):
            written += f" (= {eps:g})"
        what = "the layer's channel count" if channel_count else "far too large for an epsilon"
        message = (f"{site.spec.name} {slot}={written} is {what}: it is added to the batch variance, "
                   f"so the layer barely normalizes")
        meant = None if channel_count else _meant_momentum(site, eps)
        momentum = None
        if meant is not None:
            momentum, ported = meant
            if ported:
                other, own = ("PyTorch", "Keras") if keras else ("Keras", "PyTorch")
                message += f"; if it was meant as a {other} momentum, the {own} momentum is momentum={momentum}"
            else:
                message += f"; if it was meant as the momentum, pass momentum={momentum}"
        return Finding(self.code, site.anchor, message, self._fix(site, momentum))

    def _fix(self, site: ArgumentSite, momentum: str | None) -> NodeFix | None:
        """Move the value out of the eps slot: into `momentum=` where it reads as one and
        none is given, else leave eps at its default."""
        arg, call = site.anchor, site.call
        if call is None or not isinstance(arg, cst.Arg):
            return None  # `m.eps = v`: the value to change may serve other layers too
        later = list(call.args)[list(call.args).index(arg) + 1:] if arg in call.args else []
        if arg.keyword is None and any(other.keyword is None and not other.star for other in later):
            return None  # a positional momentum follows: removing eps would shift it into the slot
        # Unsafe: the numerics change (the layer starts to normalize), so does a saved model's config.
        if momentum is not None and "momentum" not in site.arguments:
            keyword = arg.with_changes(keyword=cst.Name("momentum"), value=cst.parse_expression(momentum),
                                       equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
            return NodeFix(Applicability.UNSAFE, f"Pass momentum={momentum} instead", ((arg, keyword),))
        return NodeFix(Applicability.UNSAFE, "Leave eps at its default", ((call, without_argument(call, arg)),))


def _meant_momentum(site: ArgumentSite, eps: float | None) -> tuple[str, bool] | None:
    """The momentum a value below 1 in the eps slot stands for, and whether it was ported
    from the other framework: PyTorch and Keras weigh the running statistics oppositely,
    and a value of 0.5 or more reads as Keras' (Keras code ported to PyTorch:
    `BatchNormalization(momentum=0.8)` became `BatchNorm2d(c, 0.8)`)."""
    if eps is None or not 0 < eps < 1:
        return None
    ported = (eps >= 0.5) != (site.spec.framework is Framework.KERAS)
    if not ported:
        return _code(site), False
    literal = isinstance(site.expression, (cst.Float, cst.Integer))
    return (complement(eps) if literal else f"1 - {_code(site)}"), True


def _code(site: ArgumentSite) -> str:
    return cst.Module([]).code_for_node(site.expression)
