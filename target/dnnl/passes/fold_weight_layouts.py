"""Fold layout changes of constant weights at compile time (for the dnnl target).

After ``tvmext.nhwc_layout`` the weights and biases reach the convolutions through
``permute_dims`` of constants, and Gemm's transposed weights through ``permute_dims``
too; Relax's FoldConstant leaves such high-level ops alone. This pass evaluates
``permute_dims``, ``reshape``, ``expand_dims`` and ``squeeze`` of constants with NumPy
and puts the result where the binding was used, so the pattern table sees
``conv2d(x, W)`` / ``matmul(x, W)`` with constant ``W`` and no weight is transposed
per inference. Integer weights (ConvInteger, MatMulInteger) reach their products as
``astype(w, "int32") - astype(zero_point, "int32")``: integer widenings and integer
subtractions of constants are evaluated too, exactly, as are the casts of QDQ models'
scales and zero points (to the type they have; integers to float32 below 2**24).
oneDNN's own blocked weight
layout is produced once, on the first call (see ``target/dnnl/runtime/ops.cc``).

Precondition: runs in the ``layout`` phase, after ``tvmext.nhwc_layout`` (priority 10).
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import mutator

from tvmext.dims import static_shape
from tvmext.pass_registry import BindingReplacer, mutator_pass, register_pass

_RESHAPES = ("relax.reshape", "relax.expand_dims", "relax.squeeze")


def _integer(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.integer)


def _evaluate_integer(call: relax.Call, array: np.ndarray) -> np.ndarray | None:
    """An integer widening or an integer subtraction of constants, when exact."""
    name = call.op.name
    if name == "relax.astype" and _integer(array):
        dtype = np.dtype(str(call.attrs.dtype))
        if dtype == np.float32 and array.ndim <= 1 and np.abs(array).max(initial=0) < 2**24:
            return array.astype(dtype)  # a zero point (per tensor or channel), exactly
        if not _integer(np.empty(0, dtype)) or not np.can_cast(array.dtype, dtype, "safe"):
            return None
        return array.astype(dtype)
    other = call.args[1] if len(call.args) > 1 else None
    if name != "relax.subtract" or not isinstance(other, tvm.ir.GenericConst):
        return None
    rhs = other.value.numpy()
    if not (_integer(array) and array.dtype == rhs.dtype):
        return None
    exact = array.astype(np.int64) - rhs.astype(np.int64)
    info = np.iinfo(array.dtype)
    if exact.size and (exact.min() < info.min or exact.max() > info.max):
        return None
    return exact.astype(array.dtype)


def _evaluate(call: relax.Call) -> np.ndarray | None:
    """The value of a layout op (or an exact integer op) on a constant, or None when it
    is not one."""
    if not isinstance(call.op, tvm.ir.Op) or not call.args:
        return None
    data = call.args[0]
    if not isinstance(data, tvm.ir.GenericConst):
        return None
    array = data.value.numpy()
    name = call.op.name
    if name == "relax.astype" and str(call.attrs.dtype) == str(array.dtype):
        return array  # a cast to the type it has (QDQ models' scales and zero points)
    if name in ("relax.astype", "relax.subtract"):
        return _evaluate_integer(call, array)
    if name == "relax.permute_dims":
        axes = call.attrs.axes
        return np.ascontiguousarray(
            np.transpose(array, None if axes is None else list(map(int, axes)))
        )
    shape = static_shape(call)
    if name in _RESHAPES and shape is not None:
        return array.reshape(shape)
    return None


@mutator
class _Folder(BindingReplacer):
    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        value = self.visit_expr(binding.value)
        if isinstance(value, relax.Call):
            array = _evaluate(value)
            if array is not None:
                self.replaced[binding.var] = relax.const(array)
        super().visit_var_binding_(binding)


@register_pass("tvmext.fold_weight_layouts", targets=("dnnl",))
def fold_weight_layouts() -> tvm.transform.Pass:
    """Evaluate layout ops on constants, then drop the bindings nobody uses."""
    return mutator_pass("tvmext.FoldWeightLayouts", _Folder)
