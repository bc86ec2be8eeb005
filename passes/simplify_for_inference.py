"""Inference simplification for every target: decompose training-style ops (batch
norm, layer norm in training form), fold constants and drop dead bindings."""

from __future__ import annotations

import tvm
from tvm import relax

from tvmext.pass_registry import register_pass


@register_pass("tvmext.simplify_for_inference", phase="optimize", targets=("*",))
def simplify_for_inference() -> tvm.transform.Pass:
    """DecomposeOpsForInference, CanonicalizeBindings, FoldConstant, DeadCodeElimination."""
    return tvm.transform.Sequential(
        [
            relax.transform.DecomposeOpsForInference(),
            relax.transform.CanonicalizeBindings(),
            relax.transform.FoldConstant(),
            relax.transform.DeadCodeElimination(),
        ],
        name="tvmext.simplify_for_inference",
    )
