"""BN204 multi-device-without-syncbn: DataParallel / DistributedDataParallel around a
batch-norm model that was not converted to SyncBatchNorm."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.diagnostics import Applicability
from bnlint.semantics.interp.usage import ParallelWrap
from bnlint.semantics.names import spelling
from bnlint.semantics.questions.training import holds_bn_phrase, holds_live_bn, only_evaluated

_CONVERT = "torch.nn.SyncBatchNorm.convert_sync_batchnorm"


class MultiDeviceWithoutSyncBn(Check):
    code = "BN204"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        usage = context.facts.usage
        for wrap in usage.wraps:
            model = wrap.model
            if not holds_live_bn(model) or model.root.sync_bn:
                continue
            if wrap.context.inference_reason() is not None or only_evaluated(usage, model):
                continue  # in eval mode batch norm uses its running statistics, not the batch's
            yield self._finding(context, wrap)

    def _finding(self, context: CheckContext, wrap: ParallelWrap) -> Finding:
        message = (f"{wrap.kind} around `{wrap.model.root.label}`, which {holds_bn_phrase(wrap.model)} batch norm: "
                   f"each device normalizes with the statistics of its own share of the batch")
        if wrap.kind == "DataParallel":
            message += "; SyncBatchNorm needs DistributedDataParallel (use it with convert_sync_batchnorm)"
            return Finding(self.code, wrap.site.node, message, site=wrap.site)
        message += "; convert the model with SyncBatchNorm.convert_sync_batchnorm"
        return Finding(self.code, wrap.site.node, message, self._fix(context, wrap), wrap.site)

    @staticmethod
    def _fix(context: CheckContext, wrap: ParallelWrap) -> NodeFix | None:
        call = wrap.site.node
        if wrap.site.path != context.facts.path or not isinstance(call, cst.Call):
            return None
        facts = context.facts
        spelled = spelling(facts.module, _CONVERT, facts.module_name, facts.is_package)
        wrapped = next((arg for arg in call.args if arg.keyword is None or arg.keyword.value == "module"), None)
        if spelled is None or wrapped is None or wrapped.star:
            return None
        converted = cst.Call(cst.parse_expression(spelled), [cst.Arg(wrapped.value)])
        return NodeFix(Applicability.UNSAFE, f"Wrap the model with {spelled}()", ((wrapped.value, converted),))
