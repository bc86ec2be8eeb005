"""Ops shipped with tvmext, registered when tvmext loads."""

from .ghmc_loss import ghmc_loss
from .moments import moments
from .rms_norm import rms_norm
from .swish import swish

__all__ = ["ghmc_loss", "moments", "rms_norm", "swish"]
