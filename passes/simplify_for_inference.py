"""Inference simplification for every target: decompose training-style ops (batch
norm, layer norm in training form) and canonicalize bindings.

Constants are folded later, after legalization (in the lowering pipeline): folding
before it leaves dangling ``shape_func`` references for dynamic slices (TVM 0.27).
"""

from __future__ import annotations

import tvm
from tvm import relax

from tvmext.pass_registry import register_pass


@register_pass("tvmext.simplify_for_inference", targets=("*",), inference_only=True)
def simplify_for_inference() -> tvm.transform.Pass:
    """DecomposeOpsForInference, CanonicalizeBindings."""
    return tvm.transform.Sequential(
        [
            relax.transform.DecomposeOpsForInference(),
            relax.transform.CanonicalizeBindings(),
        ],
        name="tvmext.simplify_for_inference",
    )
