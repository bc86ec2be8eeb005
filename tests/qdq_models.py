"""QDQ models of the zoo, quantized by ONNX Runtime's own static quantizer.

``quantize_static`` (QDQ format, int8 weights per tensor or per output channel,
uint8 or int8 activations) calibrated on seeded random inputs: the models a user who
deploys int8 on CPU brings. For the transformer, only the MatMul and Gemm nodes are
quantized, as ONNX Runtime recommends for transformers: with every op quantized, the
attention mask's ``-inf`` is calibrated into an infinite scale and ONNX Runtime's own
output is NaN-driven.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import onnx
from model_zoo import export
from onnx import numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

CALIBRATION_SAMPLES = 4


class _RandomReader(CalibrationDataReader):
    """Calibration batches: float inputs redrawn (seeded), integer ones (token ids,
    masks) as the example gives them."""

    def __init__(self, inputs: dict[str, np.ndarray], seed: int) -> None:
        rng = np.random.default_rng(seed)
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            [
                {
                    k: rng.standard_normal(v.shape).astype(np.float32)
                    if v.dtype == np.float32
                    else v
                    for k, v in inputs.items()
                }
                for _ in range(CALIBRATION_SAMPLES)
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantized(
    name: str, folder: str, *, per_channel: bool, activations: str, full: bool = False
) -> tuple[str, dict[str, np.ndarray]]:
    """Write the QDQ model of zoo model ``name`` (``activations`` "uint8" or "int8");
    returns (path, example inputs)."""
    path, inputs, _ = export(name, folder, full=full)
    tag = f"{'pc' if per_channel else 'pt'}_{activations}"
    out = os.path.join(folder, f"{os.path.basename(path)[:-5]}_qdq_{tag}.onnx")
    if os.path.exists(out):
        return out, inputs
    prepared = out[:-5] + "_prepared.onnx"
    quant_pre_process(path, prepared, skip_symbolic_shape=True)
    reader = _RandomReader(inputs, seed=0)
    activation_type = QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8
    quantize_static(
        prepared, out + ".tmp", reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
        activation_type=activation_type, weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"] if name == "bert" else None,
    )  # fmt: skip
    os.replace(out + ".tmp", out)
    return out, inputs


def output_step(model: onnx.ModelProto) -> float:
    """One quantization step of the output: its DequantizeLinear's scale, or, where the
    output is computed in float from quantized values, the finest activation scale."""
    graph = model.graph
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    last = producer[graph.output[0].name]
    if last.op_type == "DequantizeLinear":
        return float(values[last.input[1]].max())
    return min(
        float(values[n.input[1]].min())
        for n in graph.node
        if n.op_type == "QuantizeLinear" and n.input[0] not in values
    )
