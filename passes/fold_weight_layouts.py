"""Fold layout changes of constant weights at compile time (for the dnnl target).

After ``tvmext.nhwc_layout`` the weights reach the convolutions through
``layout_transform``/``permute_dims`` of constants, and Gemm's transposed weights
through ``permute_dims``; folding them leaves plain constants in the layout the
pattern table expects (``matmul(x, W)`` with constant ``W``), so no weight is
transposed per inference. oneDNN's own blocked weight layout is produced once, on
the first call (see ``target/dnnl/runtime/ops.cc``).

Precondition: runs in the ``layout`` phase, after ``tvmext.nhwc_layout``; models with
static shapes (dynamic slices would be left with dangling shape functions).
"""

from __future__ import annotations

import tvm
from tvm import relax

from tvmext.pass_registry import register_pass


@register_pass("tvmext.fold_weight_layouts", phase="layout", targets=("dnnl",))
def fold_weight_layouts() -> tvm.transform.Pass:
    """FoldConstant, then CanonicalizeBindings."""
    return tvm.transform.Sequential(
        [relax.transform.FoldConstant(), relax.transform.CanonicalizeBindings()],
        name="tvmext.fold_weight_layouts",
    )
