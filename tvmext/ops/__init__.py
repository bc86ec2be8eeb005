"""Ops shipped with tvmext, registered when this package is imported (tvmext imports it
on first use). Importing it also installs the eager runner, so that the shipped ops run
on NumPy arrays however they were imported."""

import tvmext.eager  # noqa: F401
from tvmext.ops.ghmc_loss import ghmc_loss
from tvmext.ops.moments import moments
from tvmext.ops.rms_norm import rms_norm
from tvmext.ops.swish import swish

__all__ = ["ghmc_loss", "moments", "rms_norm", "swish"]
