"""tvmext.runtime.tvm_log: TVM's noise is dropped, every other line is kept."""

from __future__ import annotations

import os

import numpy as np
from onnx import TensorProto, helper

import tvmext
from tvmext.runtime.tvm_log import filtered_tvm_log


def test_only_the_scope_warnings_are_dropped(capfd):
    with filtered_tvm_log():
        os.write(
            2, b"[12:00:00] /project/src/runtime/vm/executable.cc:276: Warning: Scope Saving:\n"
        )
        os.write(
            2, b"[12:00:00] /project/src/runtime/vm/executable.cc:340: Warning: Scope Loaded:\n"
        )
        os.write(2, b"a real warning\n")
    err = capfd.readouterr().err
    assert err == "a real warning\n"


def test_lines_are_passed_on_when_the_block_fails(capfd):
    try:
        with filtered_tvm_log():
            os.write(2, b"before the error\n")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert capfd.readouterr().err == "before the error\n"


def test_compiling_a_gather_from_python_prints_nothing_of_tvms(capfd):
    """TOPI logs "Fast mode segfaults ..." for every gather it builds."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    indices = helper.make_tensor("i", TensorProto.INT64, [2], [0, 2])
    graph = helper.make_graph([helper.make_node("Gather", ["x", "i"], ["y"])], "g", [x], [y],
                              [indices])  # fmt: skip
    module = tvmext.compile(helper.make_model(graph), "llvm")
    (out,) = module.run(np.arange(12, dtype=np.float32).reshape(4, 3))
    np.testing.assert_array_equal(out, [[0, 1, 2], [6, 7, 8]])
    assert capfd.readouterr().err == ""
