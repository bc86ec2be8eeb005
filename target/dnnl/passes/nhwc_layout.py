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


@register_pass("tvmext.nhwc_layout", phase="layout", targets=("dnnl",))
def nhwc_layout() -> tvm.transform.Pass:
    """ConvertLayout with convolutions channels-last: NWC/OWI, NHWC/OHWI, NDHWC/ODHWI."""
    return relax.transform.ConvertLayout(
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
