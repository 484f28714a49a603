"""The verifier of each rule code: `bnlint verify` runs the one registered for a finding's
code. A new rule's verifier is one function (see `verdicts.py`) and one line here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bnlint.runtime.training_verdicts import (verify_finetune_mode, verify_frozen_statistics,
                                              verify_per_device_statistics, verify_small_batch, verify_training_flag,
                                              verify_weight_decay)
from bnlint.runtime.verdicts import (Subject, Verdict, verify_batch_dependence, verify_batch_of_one, verify_eps,
                                     verify_momentum, verify_recurrence, verify_redundant_bias, verify_shape,
                                     verify_variance_shift)


@dataclass(frozen=True)
class Verifier:
    run: Callable[[Subject], Verdict]
    anchored_on_layer: bool  # the finding points at a layer's construction, not at a model call
    frameworks: tuple[str, ...] = ("torch", "keras")
    finds_its_layers: bool = False  # also runs where no layer's construction matched (a call, a norm factory)


VERIFIERS: dict[str, Verifier] = {
    "BN101": Verifier(verify_batch_dependence, False, ("torch",)),
    "BN102": Verifier(verify_batch_dependence, False, ("torch",)),  # `model.eval` without a call: BN101's effect
    "BN103": Verifier(verify_batch_dependence, False, ("torch",)),
    "BN104": Verifier(verify_training_flag, False, ("keras",)),
    "BN105": Verifier(verify_finetune_mode, False, ("keras",)),
    "BN106": Verifier(verify_frozen_statistics, False, ("torch",)),
    "BN107": Verifier(verify_batch_dependence, False, ("keras",)),
    "BN201": Verifier(verify_batch_of_one, False),
    "BN202": Verifier(verify_batch_of_one, False, ("torch",)),  # the last batch of one; drop_last is the remedy
    "BN203": Verifier(verify_small_batch, False),
    "BN204": Verifier(verify_per_device_statistics, False, ("torch",)),
    "BN301": Verifier(verify_recurrence, True, finds_its_layers=True),
    "BN302": Verifier(verify_shape, True),
    "BN303": Verifier(verify_shape, True, ("torch",)),
    "BN304": Verifier(verify_redundant_bias, True),
    "BN305": Verifier(verify_variance_shift, True),
    "BN306": Verifier(verify_momentum, True, finds_its_layers=True),
    "BN307": Verifier(verify_eps, True),
    "BN401": Verifier(verify_weight_decay, False, ("torch",)),
}
