"""A plugin file used by the tests: one op with an ONNX mapping and one pass."""

from tvm import te, tirx, transform

import tvmext
from tvmext.pass_registry import register_pass


@tvmext.op("plugintest.triple", replace=True)
def triple(x):
    return te.compute(x.shape, lambda *i: x[i] * tirx.const(3, x.dtype), name="triple")


triple.onnx("com.plugintest", "Triple", replace=True)


@register_pass("plugintest.identity", targets=("llvm",), replace=True)
def identity():
    return transform.Sequential([], name="plugintest.identity")
