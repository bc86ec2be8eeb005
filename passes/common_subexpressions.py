"""Compute each value once: identical pure calls on the same operands become one.

Layout conversion transposes a tensor once per use (ConvertLayout inserts a
``permute_dims`` for each consumer that wants the other layout): a model input that
feeds both a convolution and a residual add is copied twice, each copy a full pass
over the activation. Relax's EliminateCommonSubexpr merges such repeats (within
dataflow blocks, pure ops only, so values are unchanged).

Runs in the ``layout`` phase, after the passes that insert and fold transposes.
"""

from __future__ import annotations

import tvm
from tvm import relax

from tvmext.pass_registry import register_pass


@register_pass("tvmext.common_subexpressions", targets=("*",))
def common_subexpressions() -> tvm.transform.Pass:
    """Relax's EliminateCommonSubexpr."""
    return relax.transform.EliminateCommonSubexpr()
