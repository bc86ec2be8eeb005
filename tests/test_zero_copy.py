"""tvmext.runtime.zero_copy: TVM takes aligned arrays in place; results do not depend on it."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import tvm
from onnx_models import mlp, save

import tvmext
from tvmext.runtime.zero_copy import ALIGN, aligned, to_tensor, usable_in_place


def test_aligned_copies_into_an_in_place_array(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    a = aligned(x)
    assert a.ctypes.data % ALIGN == 0 and usable_in_place(a)
    np.testing.assert_array_equal(a, x)


def test_arrays_tvm_cannot_take_in_place():
    base = aligned(np.zeros((4, 8), np.float32))
    read_only = aligned(base)
    read_only.flags.writeable = False
    assert not usable_in_place(base[:, ::2])  # not contiguous
    assert not usable_in_place(read_only)
    assert not usable_in_place(base.reshape(-1)[1:])  # 4 bytes past the alignment


def test_module_gives_the_same_result_in_place_or_copied(rng, tmp_path):
    module = tvmext.compile(save(mlp(batch=8), tmp_path, "mlp.onnx"), "llvm")
    x = rng.standard_normal(module.inputs[0].shape).astype(np.float32)
    in_place = aligned(x)
    expected = module(x)[0]
    np.testing.assert_array_equal(module(in_place)[0], expected)
    np.testing.assert_array_equal(in_place, x)  # the input is not written


def test_every_numpy_dtype_reaches_tvm(rng):
    dtypes = (np.bool_, np.int8, np.uint16, np.float16, np.int64, ml_dtypes.bfloat16)
    for dtype in (*dtypes, ml_dtypes.float8_e5m2, ml_dtypes.float8_e4m3fn):
        x = rng.standard_normal((3, 5)).astype(dtype)
        np.testing.assert_array_equal(to_tensor(x[:, ::2], tvm.cpu()).numpy(), x[:, ::2])
    assert to_tensor(np.zeros((0, 3), np.float32), tvm.cpu()).shape == (0, 3)
