"""BN102 mode-switch-not-called: `model.eval` / `model.train` written without the call."""

from __future__ import annotations

from collections.abc import Iterator

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.checks.rewrite import as_call
from bnlint.diagnostics import Applicability
from bnlint.semantics.catalogue.layers import Framework


class ModeSwitchNotCalled(Check):
    code = "BN102"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        for switch in context.facts.usage.switches:
            if switch.called or switch.model.root.framework is Framework.KERAS:
                continue
            attribute = switch.attribute
            name = context.source(attribute)
            mode = "eval" if attribute.attr.value == "eval" else "train"
            stays = "train" if mode == "eval" else "whatever"
            message = (f"`{name}` is not called: the statement does nothing and the model stays in {stays} mode; "
                       f"write `{name}()`")
            fix = NodeFix(Applicability.SAFE, f"Call {name}()", (as_call(attribute),))
            yield Finding(self.code, attribute, message, fix, switch.site)
