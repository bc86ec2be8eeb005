"""Choose channels-last activations for oneDNN's convolutions (for the dnnl target).

oneDNN's fastest CPU convolutions read and write NHWC ("channels last") activations;
with NCHW buffers every convolution would reorder its input and output on every
call. ConvertLayout rewrites conv2d to NHWC with OHWI weights (1-D and 3-D convolutions
likewise) and carries the layout
through the element-wise ops and pooling that follow, so that consecutive
convolutions exchange NHWC tensors and only the model's edges transpose.

Precondition: runs in the ``layout`` phase, after BatchNorm folding and inference
simplification; ``tvmext.fold_weight_layouts`` then folds the weight transposes.
"""

from __future__ import annotations

import tvm
from tvm import relax

from tvmext.pass_registry import register_pass

_CONVOLUTIONS = ("relax.nn.conv1d", "relax.nn.conv2d", "relax.nn.conv3d")


def _element_wise_layouts() -> None:
    """TVM 0.27 has no layout rule for ``clip``, so ConvertLayout transposes back to NCHW
    before every clip: in a QDQ model (each QuantizeLinear clips) that put every tensor
    between two convolutions in NCHW, transposed twice. ``clip`` is element-wise in its
    tensor (its bounds are scalars): it takes ReLU's rule, the layout of its input.
    TVM's op registry is global: from the moment the dnnl target loads, every
    ConvertLayout in the process has the rule (a correct one, whoever runs it)."""
    clip = tvm.ir.Op.get("relax.clip")
    if clip.get_attr("FRelaxInferLayout") is None:
        rule = tvm.ir.Op.get("relax.nn.relu").get_attr("FRelaxInferLayout")
        tvm.ir.register_op_attr("relax.clip", "FRelaxInferLayout", rule)


_element_wise_layouts()


def _has_convolution(mod: tvm.IRModule) -> bool:
    found = []

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") in _CONVOLUTIONS:
            found.append(expr)

    for _, func in mod.functions_items():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func, visit)
    return bool(found)


@register_pass("tvmext.nhwc_layout", targets=("dnnl",))
def nhwc_layout() -> tvm.transform.Pass:
    """ConvertLayout with convolutions channels-last: NWC/OWI, NHWC/OHWI, NDHWC/ODHWI.

    Only for modules with convolutions; where ConvertLayout cannot handle the graph
    (it fails on some ops of symbolic shape), the module stays as it was, convolutions
    in their own layout (oneDNN reads them with strides)."""
    convert = relax.transform.ConvertLayout(
        {
            "relax.nn.conv1d": ["NWC", "OWI"],
            "relax.nn.conv2d": ["NHWC", "OHWI"],
            "relax.nn.conv3d": ["NDHWC", "ODHWI"],
            # kept as they are: TVM legalizes transposed convolutions in NCHW only, and
            # ConvertLayout would otherwise carry NHWC into them
            "relax.nn.conv1d_transpose": ["NCW", "IOW"],
            "relax.nn.conv2d_transpose": ["NCHW", "IOHW"],
        }
    )

    @tvm.transform.module_pass(opt_level=0, name="tvmext.NhwcLayout")
    def run(mod: tvm.IRModule, _ctx: object) -> tvm.IRModule:
        if not _has_convolution(mod):
            return mod
        try:
            return convert(mod)
        except (RuntimeError, AssertionError):  # TVM errors, and asserts in its Python helpers
            return mod

    return run
