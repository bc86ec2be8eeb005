"""A matmul of flattened tensors, unflattened, is a matmul of the tensors.

``torch.export`` decomposes ``nn.Linear`` on ``[batch, seq, k]`` into ``reshape(x, [batch
* seq, k]) -> matmul(., W) (+ bias) -> reshape(., [batch, seq, n])``. The reshapes hide
the product's real shape from what follows: the residual ``add`` after the second
reshape is no longer the matmul's consumer, so oneDNN cannot fuse it as a post-op, and
TVM runs it as a kernel of its own. Relax's matmul broadcasts a 2-D right operand over
the left one's leading dims, so the chain is ``matmul(x, W) (+ bias)``, the form the
ONNX front end produces for the same layer. A 4-D ``matmul`` (attention's scores)
becomes ``bmm`` over the flattened batch the same way, and is unflattened too.

Precondition: ``x``'s shape is the final shape with ``k`` for its last dim, and ``W``
(and the bias, if any) has rank 2 (1). Runs in the ``prepare`` phase, before the
targets' rewrites (``tvmext.scale_after_matmul`` then sees the matmul).
"""

from __future__ import annotations

from typing import Any

import tvm
import tvm_ffi
from tvm import relax
from tvm.relax.dpl import DFPattern, is_op, wildcard

from tvmext.pass_registry import function_pass, register_pass


def _patterns() -> tuple[dict[str, DFPattern], DFPattern]:
    parts: dict[str, DFPattern] = {"x": wildcard(), "weight": wildcard(), "bias": wildcard()}
    parts["flat"] = is_op("relax.reshape")(parts["x"], wildcard())
    parts["matmul"] = is_op("relax.matmul")(parts["flat"], parts["weight"])
    parts["biased"] = is_op("relax.add")(parts["matmul"], parts["bias"]) | is_op("relax.add")(
        parts["bias"], parts["matmul"]
    )
    parts["out"] = is_op("relax.reshape")(parts["matmul"] | parts["biased"], wildcard())
    return parts, parts["out"]


def _shape(expr: relax.Expr) -> list[Any] | None:
    ty = expr.ty
    if isinstance(ty, relax.TensorType) and isinstance(ty.shape, relax.ShapeExpr):
        return list(ty.shape.values)
    return None


def _same(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        tvm_ffi.structural_equal(p, q) for p, q in zip(a, b, strict=True)
    )


def _unflatten(
    expr: relax.Expr, matches: dict[DFPattern, relax.Expr], parts: dict[str, Any]
) -> Any:
    x, weight = matches[parts["x"]], matches[parts["weight"]]
    x_shape, w_shape, out_shape = _shape(x), _shape(weight), _shape(expr)
    if x_shape is None or w_shape is None or out_shape is None or len(w_shape) != 2:
        return expr
    if len(x_shape) < 3 or not _same([*x_shape[:-1], w_shape[1]], out_shape):
        return expr
    if not tvm_ffi.structural_equal(x_shape[-1], w_shape[0]):
        return expr
    matmul = matches[parts["matmul"]]
    product = relax.op.matmul(x, weight, out_dtype=matmul.attrs.out_dtype)
    if parts["biased"] not in matches:
        return product
    bias = matches[parts["bias"]]
    bias_shape = _shape(bias)
    if bias_shape is None or len(bias_shape) != 1:
        return expr
    return relax.op.add(product, bias)


def _batched_patterns() -> tuple[dict[str, DFPattern], DFPattern]:
    parts: dict[str, DFPattern] = {"a": wildcard(), "b": wildcard()}
    operands = []
    for name in ("a", "b"):  # a broadcast to the operand's own shape is a copy
        same = is_op("relax.broadcast_to")(parts[name], wildcard())
        operands.append(is_op("relax.reshape")(parts[name] | same, wildcard()))
    parts["matmul"] = is_op("relax.matmul")(*operands)
    parts["out"] = is_op("relax.reshape")(parts["matmul"], wildcard())
    return parts, parts["out"]


def _unflatten_batched(
    expr: relax.Expr, matches: dict[DFPattern, relax.Expr], parts: dict[str, Any]
) -> Any:
    """``torch.bmm`` of the flattened batch of two ``[*lead, m, k]`` x ``[*lead, k, n]``
    operands (PyTorch's 4-D matmul), unflattened: ``matmul(a, b)``."""
    a, b = matches[parts["a"]], matches[parts["b"]]
    a_shape, b_shape, out_shape = _shape(a), _shape(b), _shape(expr)
    if a_shape is None or b_shape is None or out_shape is None or len(a_shape) < 4:
        return expr
    lead = a_shape[:-2]
    if not (_same(b_shape[:-2], lead) and _same(out_shape, [*lead, a_shape[-2], b_shape[-1]])):
        return expr
    if not tvm_ffi.structural_equal(a_shape[-1], b_shape[-2]):
        return expr
    return relax.op.matmul(a, b, out_dtype=matches[parts["matmul"]].attrs.out_dtype)


@register_pass("tvmext.unflatten_matmul", targets=("*",))
def unflatten_matmul() -> tvm.transform.Pass:
    """Rewrite ``reshape(matmul(reshape(x, [m, k]), W) (+ b), shape)`` to ``matmul(x, W)
    (+ b)``, and ``reshape(matmul(reshape(a, [p, m, k]), reshape(b, [p, k, n])), shape)``
    to ``matmul(a, b)``."""
    parts, pattern = _patterns()
    batched, batched_pattern = _batched_patterns()

    def rewrite(func: relax.Function) -> relax.Function:
        func = relax.dpl.rewrite_call(pattern, lambda e, m: _unflatten(e, m, parts), func)
        return relax.dpl.rewrite_call(
            batched_pattern, lambda e, m: _unflatten_batched(e, m, batched), func
        )

    return function_pass("tvmext.UnflattenMatmul", rewrite)
