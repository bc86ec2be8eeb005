"""Fold ONNX nodes whose inputs are all constants, at import, with onnx's reference.

Exported graphs (and the function bodies of "expanded" ops) compute shapes with
chains such as ``Shape -> Gather -> Equal -> Where -> Concat -> Expand``. TVM 0.27's
importer folds some of these ops on constants but not others, and a shape that stays
a tensor then needs data-dependent shapes downstream. A default-domain node whose
inputs are all constants (initializers, Constant nodes, static shapes and the
scalars TVM derives from them) is computed
here by ``onnx.reference`` on NumPy, exactly as ONNX defines it; runtime inputs never
are. The same folds computations on weights (BiT's weight standardization of every
convolution's kernel), so that the convolution sees a constant kernel. Random ops,
control flow and outputs larger than both a bound and the node's largest input (no
bulky new constants) are left to the converters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import tvm
from tvm import relax, tirx

from tvmext.onnx.converters.helpers import const

# Outputs above this many elements, and above the node's largest input, stay
# computations (no bulky constants).
MAX_FOLDED_ELEMENTS = 1 << 16

_NOT_FOLDED = {
    "Bernoulli",
    "Dropout",
    "If",
    "Loop",
    "Multinomial",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Scan",
    "SequenceMap",
}


def static_value(x: Any) -> np.ndarray | None:
    """The value of a constant the importer holds: a tensor constant, a shape of known
    dimensions (int64, as ONNX's Shape) or a scalar PrimExpr; None for anything else."""
    if isinstance(x, tvm.ir.GenericConst):
        return np.asarray(x.value.numpy())
    if isinstance(x, relax.ShapeExpr):
        if not all(isinstance(d, tirx.IntImm) for d in x.values):
            return None
        return np.array([int(d) for d in x.values], dtype=np.int64)
    if isinstance(x, tirx.IntImm | tirx.FloatImm):
        return np.array(x.value, dtype=str(x.ty))
    return None


def fold_node(node: onnx.NodeProto, inputs: list[Any], opset: int) -> relax.Expr | None:
    """The node's outputs as constants, or None when it cannot or should not fold."""
    if node.domain not in ("", "ai.onnx") or node.op_type in _NOT_FOLDED:
        return None
    present = [(name, static_value(x)) for name, x in zip(node.input, inputs, strict=False) if name]
    if not present or any(value is None for _, value in present):
        return None
    if any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute
    ):
        return None
    from onnx.reference import ReferenceEvaluator

    feeds = {name: value for name, value in present}
    try:
        outputs = ReferenceEvaluator(node, opsets={"": opset}).run(None, feeds)
    except Exception:
        return None  # the converter decides (and reports) instead
    arrays = [o for o in outputs if isinstance(o, np.ndarray | np.generic)]
    largest_input = max(np.size(value) for _, value in present if value is not None)
    if len(arrays) != len(outputs) or max((np.size(a) for a in arrays), default=0) > max(
        MAX_FOLDED_ELEMENTS, largest_input
    ):
        return None
    folded = [const(np.asarray(a)) for a in arrays]
    return folded[0] if len(folded) == 1 else relax.Tuple(folded)
