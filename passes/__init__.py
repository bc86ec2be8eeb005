"""Target-specific Relax passes shipped with tvmext (package ``tvmext.passes``).

Each module registers its passes with :func:`tvmext.pass_registry.register_pass`;
``partition_report`` is the analysis that external targets run when partitioning.
"""

from . import (
    clip_before_transpose,
    fold_batch_norm,
    fold_weight_layouts,
    gelu_erf,
    nhwc_layout,
    post_op_operand_order,
    simplify_for_inference,
)

__all__ = [
    "clip_before_transpose",
    "fold_batch_norm",
    "fold_weight_layouts",
    "gelu_erf",
    "nhwc_layout",
    "post_op_operand_order",
    "simplify_for_inference",
]
