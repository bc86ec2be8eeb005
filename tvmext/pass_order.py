"""Where tvmext's own passes run: each phase's passes, in the order they run.

A registered pass runs in its phase by priority, lower first (ties in registration
order). tvmext's passes take their phase and priority from this table, not from their
modules, so the whole order is read here; a plugin's pass
(``register_pass(..., priority=p)``) runs among them by number. Which passes run for a
compile also depends on the targets each was registered for (``dnnl``: only with
oneDNN).
"""

from __future__ import annotations

ORDER: dict[str, tuple[tuple[str, int], ...]] = {
    # The model as imported: rewrites that let the targets' patterns match.
    "prepare": (
        ("tvmext.drop_noop_casts", -20),  # casts to the same type sit between patterns' ops
        ("tvmext.fold_pad_into_conv", -10),  # a padded conv is one conv for every target
        ("tvmext.power_to_multiply", -6),  # x**2 -> x*x, before the GELU patterns look
        ("tvmext.unflatten_matmul", -5),  # exposes residual adds and masks as post-ops
        ("tvmext.fold_batch_norm", 0),  # dnnl: into the convolution's weights
        ("tvmext.gelu_erf", 1),  # dnnl: erf and tanh GELU as one op (a post-op)
        ("tvmext.gelu_tanh", 2),
        ("tvmext.scale_after_matmul", 3),  # dnnl: attention's query scale as a post-op
        ("tvmext.silu_from_sigmoid", 4),  # dnnl: x * sigmoid(x) as one post-op
    ),
    "optimize": (("tvmext.simplify_for_inference", 0),),
    # Layouts and constants for the targets, right before partitioning.
    "layout": (
        ("tvmext.post_op_operand_order", -1),  # dnnl: the residual operand second
        ("tvmext.nhwc_layout", 0),  # dnnl: channels-last convolutions
        ("tvmext.activation_before_reshape", 1),  # dnnl: activations next to their producer
        ("tvmext.clip_before_transpose", 5),  # dnnl: clip next to its convolution
        ("tvmext.fold_transpose_pairs", 6),  # the layout change's transposes that cancel
        ("tvmext.common_subexpressions", 7),
        ("tvmext.fold_weight_layouts", 10),  # dnnl: transposed weights folded to constants
        ("tvmext.integer_matmul_in_float", 11),  # dnnl: after the zero points are constants
        ("tvmext.unshare_int8_operands", 20),  # dnnl: last, after every other rewrite
    ),
}

# name -> (phase, priority)
PLACES: dict[str, tuple[str, int]] = {
    name: (phase, priority) for phase, passes in ORDER.items() for name, priority in passes
}
