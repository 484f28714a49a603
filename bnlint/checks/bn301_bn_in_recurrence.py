"""BN301 bn-in-recurrence: batch norm inside a recurrent step shares its statistics across time steps."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding
from bnlint.semantics.interp.usage import Site
from bnlint.semantics.questions.recurrence import recurrence

_ADVICE = "one set of batch statistics serves every time step; use LayerNorm"


class BnInRecurrence(Check):
    code = "BN301"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        found = recurrence(context.facts, context.project)
        for cell in found.cells:
            why = f"called at every step of `{_loop(context, cell.loop)}`" if cell.loop is not None else cell.why
            for norm in cell.norms:
                message = f"{norm.name} inside the recurrent cell {cell.node.name.value} ({why}): {_ADVICE}"
                # Another file's cell is reported at its batch norm, in that file.
                site = Site(norm.node, cell.path, cell.node) if cell.path != context.facts.path else None
                yield Finding(self.code, norm.node, message, site=site)
        in_cells = {norm.node for cell in found.cells for norm in cell.norms}
        for step in found.step_calls:
            if step.norms and all(norm.node in in_cells for norm in step.norms):
                continue  # the call of a cell already reported
            callee = context.source(step.call.func)
            if step.imported is not None:
                runs = f"{callee} ({step.imported}, which uses batch norm)"
            else:
                names = ", ".join(dict.fromkeys(norm.name for norm in step.norms))
                runs = callee if callee.endswith(names) else f"{callee} ({names})"
            loop = _loop(context, step.loop)
            yield Finding(self.code, step.call, f"{runs} runs at every step of `{loop}`: {_ADVICE}")


def _loop(context: CheckContext, loop: cst.For | cst.While) -> str:
    if isinstance(loop, cst.For):
        return f"for {context.source(loop.target)} in {context.source(loop.iter)}"
    return f"while {context.source(loop.test)}"
