"""Converters for ONNX nodes that TVM's importer lacks or gets wrong, one module per
operator family; importing this package registers them all."""

from tvmext.onnx.converters import (
    attention,
    conv,
    cumulative,
    elementwise,
    float8,
    loss,
    norm,
    pool,
    reduce,
    shape,
    spectral,
    tensor,
)

__all__ = [
    "attention",
    "conv",
    "cumulative",
    "elementwise",
    "float8",
    "loss",
    "norm",
    "pool",
    "reduce",
    "shape",
    "spectral",
    "tensor",
]
