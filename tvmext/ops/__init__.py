"""Ops shipped with tvmext, registered when tvmext loads."""

from tvmext.ops.ghmc_loss import ghmc_loss
from tvmext.ops.moments import moments
from tvmext.ops.rms_norm import rms_norm
from tvmext.ops.swish import swish

__all__ = ["ghmc_loss", "moments", "rms_norm", "swish"]
