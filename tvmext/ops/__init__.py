"""Ops shipped with tvmext, registered when tvmext loads."""

from .moments import moments
from .rms_norm import rms_norm
from .swish import swish

__all__ = ["moments", "rms_norm", "swish"]
