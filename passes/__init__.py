"""Target-independent Relax passes (package ``tvmext.passes``); importing it registers
them with :mod:`tvmext.pass_registry`. Passes that serve one target live with it, under
``tvmext.target.<name>.passes``."""

from tvmext.passes import simplify_for_inference

__all__ = ["simplify_for_inference"]
