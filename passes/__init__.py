"""Target-independent Relax passes (package ``tvmext.passes``); importing it registers
them with :mod:`tvmext.pass_registry`. Passes that serve one target live with it, under
``tvmext.target.<name>.passes``."""

from tvmext.passes import (
    common_subexpressions,
    drop_noop_casts,
    fold_pad_into_conv,
    fold_transpose_pairs,
    power_to_multiply,
    simplify_for_inference,
    unflatten_matmul,
)

__all__ = [
    "common_subexpressions",
    "drop_noop_casts",
    "fold_pad_into_conv",
    "fold_transpose_pairs",
    "power_to_multiply",
    "simplify_for_inference",
    "unflatten_matmul",
]
