"""ONNX node conformance: every case recorded as passing must keep passing.

The record (tests/onnx_conformance_passing.txt) and the default tier's sample of it
(tests/onnx_conformance_sample.txt: the cases that run every tvmext line the record runs,
one per operator family at least) are written by
``python -m tvmext.onnx.conformance --record tests/onnx_conformance_passing.txt
--sample tests/onnx_conformance_sample.txt`` (official protocol: runtime inputs, exact
dtype, rtol 1e-3, atol 1e-7). The full tier checks every recorded case.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmext
from tvmext.onnx import conformance as onnx_conformance
from tvmext.onnx.conformance_sample import covering_sample, lines_run, spread

PASSING = pathlib.Path(__file__).parent / "onnx_conformance_passing.txt"
SAMPLE = pathlib.Path(__file__).parent / "onnx_conformance_sample.txt"


def _check(record: pathlib.Path, *flags: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tvmext.onnx.conformance", "--check", str(record), "--jobs", "2",
         *flags],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "passed" in done.stdout


@pytest.mark.native
def test_sampled_cases_still_pass():
    _check(SAMPLE)


def test_sample_is_drawn_from_the_record():
    sample, record = (set(path.read_text().split()) for path in (SAMPLE, PASSING))
    assert sample <= record, sorted(sample - record)
    assert len(sample) >= 200


def test_sample_covers_every_line_and_each_family():
    lines = {"a1": {"x", "y"}, "a2": {"x"}, "a3": {"x"}, "b1": {"z"}, "b2": {"z", "w"}}
    lines["b3"] = {"q"}
    families = {name: name[0] for name in lines}
    assert covering_sample(lines, families, per_family=1) == ["a1", "b1", "b2", "b3"]
    assert spread(["d", "a", "c", "b", "e"], 3) == ["a", "c", "e"]


def test_lines_run_sees_tvmext_lines_only():
    with lines_run() as seen:
        onnx_conformance._compare([np.ones(2)], [np.ones(2)])
    assert seen
    assert all(path.startswith(str(pathlib.Path(tvmext.__file__).parent)) for path in seen)


@pytest.mark.full
def test_recorded_cases_still_pass():
    """All but the ``_expanded`` cases: those run an ONNX function's body, whose every
    primitive op has cases of its own here."""
    _check(PASSING, "--exclude", "_expanded")


@pytest.mark.full
def test_recorded_expanded_cases_still_pass():
    _check(PASSING, "--only", "_expanded")


def test_record_covers_more_than_stock_tvm_here():
    # Recorded: tvmext 1,715 of the 1,884 cases, stock TVM 0.27 765 in the same run
    # (same protocol, this machine).
    assert len(PASSING.read_text().split()) >= 1715


def test_compare_enforces_the_protocol():
    got = [np.array([1.0, 2.0], np.float32)]
    assert onnx_conformance._compare(got, [np.array([1.0, 2.0005], np.float32)]) is None
    assert "values differ" in onnx_conformance._compare(got, [np.array([1.0, 2.01], np.float32)])
    assert "dtype float32, expected float64" in onnx_conformance._compare(
        got, [np.array([1.0, 2.0])]
    )
    # Types NumPy lacks (ml_dtypes) compare by value, at the same protocol.
    bf16 = [np.array([1.0, 2.0], ml_dtypes.bfloat16)]
    assert onnx_conformance._compare(bf16, [np.array([1.0, 2.0], ml_dtypes.bfloat16)]) is None
    wrong = [np.array([1.0, 2.5], ml_dtypes.bfloat16)]
    assert "values differ" in onnx_conformance._compare(bf16, wrong)


def _shape_model(consumer: str):
    nodes = [helper.make_node("Shape", ["x"], ["s"])]
    if consumer == "Mul":
        nodes.append(helper.make_node("Mul", ["s", "s"], ["y"]))
    else:
        nodes.append(helper.make_node("Reshape", ["x", "s"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [
            helper.make_tensor_value_info("y", TensorProto.INT64, [2])
            if consumer == "Mul"
            else helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.native
def test_static_shape_feeds_any_op():
    """TVM's importer rejects a Shape output into Mul ("cannot handle ShapeExpr")."""
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(tvmext.compile(_shape_model("Mul"))(x)[0], [4, 9])
    np.testing.assert_array_equal(tvmext.compile(_shape_model("Reshape"))(x)[0], x)


def test_constant_with_value_floats():
    node = helper.make_node("Constant", [], ["c"], value_floats=[1.5, -2.0])
    add = helper.make_node("Add", ["x", "c"], ["y"])
    graph = helper.make_graph(
        [node, add],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    y = tvmext.compile(model)(np.array([1, 1], np.float32))[0]
    np.testing.assert_allclose(y, [2.5, -1.0])
