"""Converters for ONNX nodes that TVM's importer lacks or gets wrong, one module per
operator family; importing this package registers them all."""

from tvmext.onnx.converters import (
    cumulative,
    elementwise,
    float8,
    helpers,
    norm,
    pool,
    reduce,
    shape,
)

__all__ = ["cumulative", "elementwise", "float8", "helpers", "norm", "pool", "reduce", "shape"]
