"""Converters for ONNX nodes that TVM's importer lacks or gets wrong, one module per
operator family; importing this package registers them all."""

from tvmext.onnx.converters import (
    attention,
    cast,
    conv,
    cumulative,
    elementwise,
    float8,
    loss,
    norm,
    pool,
    quantize,
    recurrent,
    reduce,
    resize,
    rotary,
    shape,
    spectral,
    sub_byte,
    tensor,
)

__all__ = [
    "attention",
    "cast",
    "conv",
    "cumulative",
    "elementwise",
    "float8",
    "loss",
    "norm",
    "pool",
    "quantize",
    "recurrent",
    "reduce",
    "resize",
    "rotary",
    "shape",
    "spectral",
    "sub_byte",
    "tensor",
]
