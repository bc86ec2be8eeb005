"""Seeded mutations of small real ONNX models, for fuzzing the importer and the CLI.

A fuzz test needs inputs that are *almost* right: a model whose one attribute, dim,
dtype, input name, opset, initializer or byte is wrong reaches deep into the importer
and TVM, where a wholly random file would stop at the parser. Each mutant is
``(description, bytes)``; the same seed gives the same mutants, so a failure names the
seed and description that reproduce it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def cnn() -> onnx.ModelProto:
    """Conv -> Relu -> MaxPool -> Flatten -> Gemm, with initializers."""
    rng = np.random.default_rng(0)
    weights = {
        "W": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "B": rng.standard_normal(4).astype(np.float32),
        "W2": rng.standard_normal((10, 36)).astype(np.float32),
        "B2": rng.standard_normal(10).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "W2", "B2"], ["y"], name="fc", transB=1),
    ]
    return _model(nodes, "cnn", [("x", [1, 3, 8, 8])], [("y", [1, 10])], weights)


def attention_block() -> onnx.ModelProto:
    """MatMul -> Softmax -> LayerNormalization, with initializers."""
    rng = np.random.default_rng(1)
    weights = {
        "Wq": rng.standard_normal((8, 8)).astype(np.float32),
        "gamma": np.ones(8, np.float32),
        "beta": np.zeros(8, np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "Wq"], ["q"], name="proj"),
        helper.make_node("Softmax", ["q"], ["s"], name="softmax", axis=-1),
        helper.make_node(
            "LayerNormalization", ["s", "gamma", "beta"], ["y"], name="norm", axis=-1, epsilon=1e-5
        ),
    ]
    return _model(nodes, "block", [("x", [2, 4, 8])], [("y", [2, 4, 8])], weights)


def shape_ops() -> onnx.ModelProto:
    """Reshape -> Concat -> Gather, with initializers (the shape and the indices too)."""
    weights = {
        "shape": np.array([6, 4], np.int64),
        "extra": np.ones((2, 4), np.float32),
        "indices": np.array([0, 2], np.int64),
    }
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
        helper.make_node("Concat", ["r", "extra"], ["c"], name="concat", axis=0),
        helper.make_node("Gather", ["c", "indices"], ["y"], name="gather", axis=0),
    ]
    return _model(nodes, "shapes", [("x", [2, 3, 4])], [("y", [2, 4])], weights)


BASE_MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    "cnn": cnn,
    "attention_block": attention_block,
    "shape_ops": shape_ops,
}


def _model(nodes, name, inputs, outputs, weights) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# Values a mutated int attribute or dim takes: the edges a converter may not expect.
_EDGE_INTS = [-1, -7, 0, 1, 2**31, 2**62, 3]
_ODD_DTYPES = [
    TensorProto.UNDEFINED,
    TensorProto.STRING,
    TensorProto.BOOL,
    TensorProto.INT8,
    TensorProto.FLOAT16,
    TensorProto.COMPLEX64,
    TensorProto.UINT64,
    1000,
]


def _mutate_attribute(model: onnx.ModelProto, rng: random.Random) -> str:
    nodes = [n for n in model.graph.node if n.attribute]
    node = rng.choice(nodes)
    attr = rng.choice(list(node.attribute))
    kind = rng.choice(["value", "type", "drop"])
    if kind == "drop":
        node.attribute.remove(attr)
        return f"drop attribute {attr.name} of {node.name}"
    if kind == "type":
        replacement = rng.choice(
            [
                helper.make_attribute(attr.name, "text"),
                helper.make_attribute(attr.name, [1.5, 2.5]),
                helper.make_attribute(attr.name, 0.5),
                helper.make_attribute(attr.name, [7]),
            ]
        )
        node.attribute.remove(attr)
        node.attribute.append(replacement)
        return f"attribute {attr.name} of {node.name} becomes type {replacement.type}"
    value = rng.choice(_EDGE_INTS)
    if attr.type == onnx.AttributeProto.INTS:
        attr.ints[rng.randrange(len(attr.ints))] = value
    elif attr.type == onnx.AttributeProto.INT:
        attr.i = value
    elif attr.type == onnx.AttributeProto.FLOAT:
        attr.f = float(rng.choice([-1.0, 0.0, float("nan"), 1e30]))
        return f"attribute {attr.name} of {node.name} = {attr.f}"
    return f"attribute {attr.name} of {node.name} gets {value}"


def _mutate_dim(model: onnx.ModelProto, rng: random.Random) -> str:
    value = model.graph.input[0]
    dims = value.type.tensor_type.shape.dim
    index = rng.randrange(len(dims))
    new = rng.choice([-1, -5, 0, 2**31, 2**40, "sym"])
    if isinstance(new, str):
        dims[index].dim_param = new
    else:
        dims[index].dim_value = new
    return f"input {value.name} dim {index} = {new!r}"


def _mutate_rank(model: onnx.ModelProto, rng: random.Random) -> str:
    shape = model.graph.input[0].type.tensor_type.shape
    if rng.random() < 0.5:
        shape.dim.add().dim_value = 2
        return f"input {model.graph.input[0].name} gets an extra dim"
    del shape.dim[-1]
    return f"input {model.graph.input[0].name} loses its last dim"


def _mutate_dtype(model: onnx.ModelProto, rng: random.Random) -> str:
    dtype = rng.choice(_ODD_DTYPES)
    if rng.random() < 0.5:
        model.graph.input[0].type.tensor_type.elem_type = dtype
        return f"input {model.graph.input[0].name} dtype {dtype}"
    init = rng.choice(list(model.graph.initializer))
    init.data_type = dtype
    return f"initializer {init.name} dtype {dtype}"


def _drop_input(model: onnx.ModelProto, rng: random.Random) -> str:
    if rng.random() < 0.3:
        name = model.graph.input[0].name
        del model.graph.input[0]
        return f"graph input {name} dropped"
    node = rng.choice(list(model.graph.node))
    index = rng.randrange(len(node.input))
    name = node.input[index]
    del node.input[index]
    return f"node {node.name} loses input {index} ({name})"


def _rename_input(model: onnx.ModelProto, rng: random.Random) -> str:
    node = rng.choice(list(model.graph.node))
    index = rng.randrange(len(node.input))
    node.input[index] = "nowhere"
    return f"node {node.name} input {index} renamed to 'nowhere'"


def _mutate_opset(model: onnx.ModelProto, rng: random.Random) -> str:
    version = rng.choice([1, 5, 10, 30, 999])
    model.opset_import[0].version = version
    return f"opset {version}"


def _truncate_initializer(model: onnx.ModelProto, rng: random.Random) -> str:
    init = rng.choice([i for i in model.graph.initializer if len(i.raw_data) > 8])
    if rng.random() < 0.5:
        init.raw_data = init.raw_data[: rng.randrange(1, len(init.raw_data))]
        return f"initializer {init.name} truncated to {len(init.raw_data)} bytes"
    init.dims[0] = init.dims[0] + rng.choice([1, 5, -1])
    return f"initializer {init.name} dims become {list(init.dims)}"


def _unknown_op(model: onnx.ModelProto, rng: random.Random) -> str:
    node = rng.choice(list(model.graph.node))
    if rng.random() < 0.5:
        node.op_type = "NoSuchOp"
        return f"node {node.name} op type NoSuchOp"
    node.domain = "com.nobody"
    model.opset_import.append(helper.make_opsetid("com.nobody", 1))
    return f"node {node.name} domain com.nobody"


def _mutate_constant(model: onnx.ModelProto, rng: random.Random) -> str:
    """A shape or index initializer gets an edge value (only the shape-ops model has them)."""
    ints = [i for i in model.graph.initializer if i.data_type == TensorProto.INT64]
    if not ints:
        return _mutate_attribute(model, rng)
    init = rng.choice(ints)
    array = numpy_helper.to_array(init).copy()
    array[rng.randrange(array.size)] = rng.choice([-1, -3, 0, 99, 2**40])
    init.CopyFrom(numpy_helper.from_array(array, init.name))
    return f"initializer {init.name} = {array.tolist()}"


def _drop_initializer(model: onnx.ModelProto, rng: random.Random) -> str:
    index = rng.randrange(len(model.graph.initializer))
    name = model.graph.initializer[index].name
    del model.graph.initializer[index]
    return f"initializer {name} dropped (still used)"


def _reorder_nodes(model: onnx.ModelProto, rng: random.Random) -> str:
    nodes = list(model.graph.node)
    rng.shuffle(nodes)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return f"nodes reordered: {[n.name for n in nodes]}"


def _duplicate_name(model: onnx.ModelProto, rng: random.Random) -> str:
    """Two nodes write the same output (ONNX demands single assignment)."""
    first, second = rng.sample(list(model.graph.node), 2)
    second.output[0] = first.output[0]
    return f"nodes {first.name} and {second.name} both write {first.output[0]}"


MUTATIONS: dict[str, Callable[[onnx.ModelProto, random.Random], str]] = {
    "attribute": _mutate_attribute,
    "dim": _mutate_dim,
    "rank": _mutate_rank,
    "dtype": _mutate_dtype,
    "drop_input": _drop_input,
    "rename_input": _rename_input,
    "opset": _mutate_opset,
    "initializer": _truncate_initializer,
    "unknown_op": _unknown_op,
    "constant": _mutate_constant,
    "drop_initializer": _drop_initializer,
    "reorder": _reorder_nodes,
    "duplicate_output": _duplicate_name,
}


def _corrupt_bytes(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    if rng.random() < 0.5:
        cut = rng.randrange(1, len(data))
        return f"file truncated to {cut} bytes", data[:cut]
    buf = bytearray(data)
    positions = [rng.randrange(len(buf)) for _ in range(8)]
    for p in positions:
        buf[p] = rng.randrange(256)
    return f"bytes flipped at {sorted(positions)}", bytes(buf)


@dataclass(frozen=True)
class Mutant:
    """One mutated model: what was done (with the seed that redoes it) and its bytes."""

    seed: int
    description: str
    data: bytes


def mutant(seed: int, index: int) -> Mutant:
    """Mutant ``index`` of ``seed``: the base models and mutation kinds in turn, the
    details drawn from a generator seeded by both."""
    kinds = [*MUTATIONS, "bytes"]
    mutant_seed = seed * 100_003 + index
    rng = random.Random(mutant_seed)
    base = list(BASE_MODELS)[index % len(BASE_MODELS)]
    kind = kinds[(index // len(BASE_MODELS)) % len(kinds)]
    model = BASE_MODELS[base]()
    if kind == "bytes":
        what, data = _corrupt_bytes(model.SerializeToString(), rng)
    else:
        what = MUTATIONS[kind](model, rng)
        data = model.SerializeToString()
    return Mutant(mutant_seed, f"{base}: {kind}: {what}", data)
