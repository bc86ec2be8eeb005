"""ONNX ``NegativeLogLikelihoodLoss`` and ``SoftmaxCrossEntropyLoss`` (all reductions,
``ignore_index``, weights, the log-prob output), registered for ``ai.onnx``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tvm import relax

from tvmext.errors import ModelError
from tvmext.onnx.registry import register_converter


def _nll(
    bb: relax.BlockBuilder,
    log_prob: relax.Expr,
    target: relax.Expr,
    weight: relax.Expr | None,
    reduction: str,
    ignore_index: int | None,
) -> relax.Expr:
    """NegativeLogLikelihoodLoss of ``log_prob`` [N, C, d...] at ``target`` [N, d...]."""
    op = relax.op
    dtype = str(log_prob.ty.dtype)
    if ignore_index is None:
        safe, mask = target, None
    else:
        ignored = bb.emit(op.equal(target, relax.const(ignore_index, target.ty.dtype)))
        safe = bb.emit(op.where(ignored, op.zeros_like(target), target))
        mask = bb.emit(op.astype(op.logical_not(ignored), dtype))
    picked = op.squeeze(op.gather_elements(log_prob, op.expand_dims(safe, 1), axis=1), [1])
    scale = op.take(weight, safe, axis=0) if weight is not None else None
    if mask is not None:
        scale = op.multiply(scale, mask) if scale is not None else mask
    loss = op.negative(picked)
    if scale is not None:
        loss = op.multiply(loss, scale)
    loss = bb.emit(loss)
    if reduction == "none":
        return loss
    total = op.sum(loss)
    if reduction == "sum":
        return total
    if reduction != "mean":
        raise ModelError(f"attribute reduction is {reduction!r}; expected none, sum or mean")
    count = op.sum(scale) if scale is not None else None
    if count is None:
        n = 1
        for d in target.ty.shape.values:
            n *= int(d)
        return op.divide(total, relax.const(float(n), dtype))
    return op.divide(total, count)


@register_converter("", "NegativeLogLikelihoodLoss", 12)
def negative_log_likelihood_loss(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX NegativeLogLikelihoodLoss (TVM 0.27 has no converter; needed for training)."""
    weight = inputs[2] if len(inputs) > 2 else None
    return _nll(
        bb, inputs[0], inputs[1], weight, attrs.get("reduction", "mean"), attrs.get("ignore_index")
    )


@register_converter("", "SoftmaxCrossEntropyLoss", 12)
def softmax_cross_entropy_loss(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX SoftmaxCrossEntropyLoss: log_softmax over axis 1, then NLL; optional
    second output ``log_prob``."""
    log_prob = bb.emit(relax.op.nn.log_softmax(inputs[0], axis=1))
    weight = inputs[2] if len(inputs) > 2 else None
    loss = _nll(
        bb, log_prob, inputs[1], weight, attrs.get("reduction", "mean"), attrs.get("ignore_index")
    )
    if attrs["_num_outputs"] > 1:
        return relax.Tuple([bb.emit(loss), log_prob])
    return loss
