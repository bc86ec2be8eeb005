"""Relax passes that prepare a model for oneDNN's patterns; importing this package
registers them for the ``dnnl`` target."""

from tvmext.target.dnnl.passes import (
    activation_before_reshape,
    clip_before_transpose,
    fold_batch_norm,
    fold_weight_layouts,
    gelu_erf,
    gelu_tanh,
    integer_matmul_in_float,
    nhwc_layout,
    post_op_operand_order,
    scale_after_matmul,
    silu_from_sigmoid,
    unshare_int8_operands,
)

__all__ = [
    "activation_before_reshape",
    "clip_before_transpose",
    "fold_batch_norm",
    "fold_weight_layouts",
    "gelu_erf",
    "gelu_tanh",
    "integer_matmul_in_float",
    "nhwc_layout",
    "post_op_operand_order",
    "scale_after_matmul",
    "silu_from_sigmoid",
    "unshare_int8_operands",
]
