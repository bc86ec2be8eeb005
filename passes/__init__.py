"""Target-specific Relax passes shipped with tvmext (package ``tvmext.passes``).

Each module registers its passes with :func:`tvmext.pass_registry.register_pass`.
"""

from . import simplify_for_inference

__all__ = ["simplify_for_inference"]
