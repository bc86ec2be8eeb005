"""Domain-aware ONNX import around ``relax.frontend.onnx``.

TVM's importer dispatches on ``op_type`` alone and has no public way to add a
converter. Here every node is named by a key before TVM's importer sees it, and an
importer subclass looks each node up by that key: a node whose (domain, op_type) is
registered (``op.onnx(...)`` or a converter) goes through the tvmext registry, a
default-domain node whose inputs are all constants is folded
(:mod:`tvmext.onnx.constant_folding`), everything else goes to TVM's converters; so a
model without custom ops or constant subgraphs imports as with
``relax.frontend.onnx.from_onnx``. A model is validated before TVM sees it
(:mod:`tvmext.onnx.validation`); errors name the node.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import onnx
import tvm
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

import tvmext.onnx.converters  # noqa: F401  (registers the converters this importer uses)
from tvmext.errors import ModelError, TvmextError
from tvmext.onnx import registry as onnx_registry
from tvmext.onnx import symbolic_values
from tvmext.onnx.constant_folding import fold_node
from tvmext.onnx.packed_types import carry_packed_types
from tvmext.onnx.qdq_integer import integer_qdq
from tvmext.onnx.validation import node_label, validate
from tvmext.onnx.weights import apply_conversions
from tvmext.runtime.packed_dtypes import CARRIER

_KEY_PREFIX = "tvmext::"
# TVM's errors quote the whole op object ("In ir.Op(span=..., name="relax.nn.softmax",
# ..., support_level=10), the input axis ..."); its name says the same in a word.
_OP_REPR = re.compile(r'(?:In )?ir\.Op\(.*?name="(?P<name>[^"]+)".*?support_level=\d+\),?\s*')
_METADATA_NOTE = "# Metadata omitted. Use show_meta=True in script() method to show it."
_MESSAGE_LIMIT = 400
# Default-domain ops TVM's importer handles outside its converter table.
_HANDLED_BY_TVM = {"If", "Constant"}


def load_model(model: str | os.PathLike[str] | onnx.ModelProto) -> onnx.ModelProto:
    """Read an ONNX file (or pass a ModelProto through); errors name the file."""
    if isinstance(model, onnx.ModelProto):
        return model
    path = os.fspath(model)
    if not os.path.exists(path):
        raise ModelError(f"model file {path!r} does not exist")
    try:
        proto = onnx.load(path)
    except Exception as err:
        raise ModelError(
            f"model file {path!r} is not a readable ONNX model: {type(err).__name__}: {err}"
        ) from err
    if not proto.graph.node:
        raise ModelError(f"model file {path!r} holds no graph nodes (is it an ONNX model?)")
    return proto


def _opsets(model: onnx.ModelProto) -> dict[str, int]:
    return {onnx_registry.normalize_domain(o.domain): o.version for o in model.opset_import}


def _tvm_message(err: Exception) -> str:
    """One line of a TVM error: the op named by its name, not its repr, and what TVM
    found wrong (often after a line break, past a printed expression), cut to a limit."""
    text = " ".join(str(err).replace(_METADATA_NOTE, " ").split())
    text = _OP_REPR.sub(lambda m: f"{m['name']}: ", text)
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


def _check_ops(model: onnx.ModelProto) -> None:
    """Every node has a converter: TVM's (default domain) or a registered one."""
    opsets = _opsets(model)
    tvm_ops = onnx_frontend._get_convert_map()
    for index, node in enumerate(model.graph.node):
        domain = onnx_registry.normalize_domain(node.domain)
        if onnx_registry.lookup(domain, node.op_type, opsets.get(domain, 1)) is not None:
            continue
        if domain == "" and (node.op_type in tvm_ops or node.op_type in _HANDLED_BY_TVM):
            continue
        known = onnx_registry.registered(domain)
        listing = ", ".join(known) if known else "nothing"
        hint = (
            "TVM's ONNX importer has no converter for it"
            if domain == ""
            else f"domain {domain!r} has {listing} registered"
        )
        raise ModelError(
            f"{node_label(node, index)}: no converter for op type {node.op_type!r} in "
            f"domain {node.domain or 'ai.onnx'!r} ({hint}); declare one with "
            f"op.onnx({node.domain!r}, {node.op_type!r})"
        )


@dataclass(frozen=True)
class _Node:
    """What the importer knows of a node besides TVM: the node itself, its label for
    errors, and the registered mapping that converts it (None: TVM's converter)."""

    node: onnx.NodeProto
    label: str
    mapping: Any
    input_dtypes: tuple[str | None, ...] = ()  # logical types, where sub-byte types occur
    packed: bool = False  # touches a sub-byte type: not folded (values are in carriers)


def _key_nodes(
    model: onnx.ModelProto, types: Mapping[str, str]
) -> tuple[onnx.ModelProto, dict[str, _Node]]:
    """Copy of ``model`` whose nodes are named by a key into the returned table.
    Default-domain nodes keep their op_type, so that TVM's importer treats them as it
    treats that op (e.g. which ops may take a shape); registered nodes of other domains
    get the key as op_type too, so that none is mistaken for a default-domain op.
    ``types`` holds the logical type of each value where the model has sub-byte ones."""
    opsets = _opsets(model)
    renamed = onnx.ModelProto()
    renamed.CopyFrom(model)
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    table: dict[str, _Node] = {}
    for index, node in enumerate(renamed.graph.node):
        original = model.graph.node[index]
        key = f"{_KEY_PREFIX}{index}"
        node.name = key
        domain = onnx_registry.normalize_domain(node.domain)
        mapping = onnx_registry.lookup(domain, node.op_type, opsets.get(domain, 1))
        if isinstance(mapping, onnx_registry.OnnxConverter) and mapping.applies is not None:
            users = [op for out in node.output for op in consumers.get(out, [])]
            if not mapping.applies(node, users):
                mapping = None
        entry = _Node(original, node_label(original, index), mapping)
        if types:
            dtypes = tuple(types.get(name) for name in node.input)
            packed = any(types.get(n) in CARRIER for n in [*node.input, *node.output])
            entry = dataclasses.replace(entry, input_dtypes=dtypes, packed=packed)
        table[key] = entry
        if mapping is not None and domain != "":
            node.op_type = key
    return renamed, table


class _Importer(onnx_frontend.ONNXGraphImporter):
    """TVM's graph importer, plus the registered (domain, op_type) converters."""

    def __init__(self, table: Mapping[str, _Node], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tvmext_table = table
        # ONNX value name -> its value as a function of the input dimensions.
        self._symbolic: dict[str, symbolic_values.SymbolicValue] = {}

    def _runtime_weights(self) -> list[relax.Var]:
        """Initializers kept as parameters of ``main`` (``keep_params_in_input``)."""
        return [var for var, _ in self._params.values()]

    def _check_for_unsupported_ops(self, graph: onnx.GraphProto) -> None:
        """Done before renaming by :func:`_check_ops`, with node names in the errors."""

    def _convert_operator(
        self, op_name: str, inputs: list[relax.Expr], attrs: dict[str, Any], opset: int
    ) -> relax.Expr:
        entry = self._tvmext_table.get(attrs.get("tvm_custom", {}).get("name", ""))
        if entry is None:  # a node of a subgraph
            return super()._convert_operator(op_name, inputs, attrs, opset)
        try:
            return self._convert_node(entry, op_name, inputs, attrs, opset)
        except TvmextError as err:
            if isinstance(err, ModelError) and str(err).startswith("node "):
                raise  # named by the node itself or by one of its subgraph's nodes
            raise ModelError(f"{entry.label}: {err}") from err
        except Exception as err:
            raise ModelError(f"{entry.label}: {type(err).__name__}: {_tvm_message(err)}") from err

    def _convert_node(
        self,
        entry: _Node,
        op_name: str,
        inputs: list[relax.Expr],
        attrs: dict[str, Any],
        opset: int,
    ) -> relax.Expr:
        folded = None if entry.packed else fold_node(entry.node, inputs, opset)
        if folded is not None:
            return folded
        if not entry.packed:
            known = [
                self._symbolic.get(name) or symbolic_values.known_value(x)
                for name, x in zip(entry.node.input, inputs, strict=False)
            ]
            value = symbolic_values.evaluate(entry.node, inputs, known)
            if value is not None and value.is_constant:
                return symbolic_values.as_relax(value)
            if value is not None:
                # Kept as a tensor between nodes (TVM's importer refuses shape values
                # in most ops); a consumer that takes a shape gets the value itself.
                self._symbolic[entry.node.output[0]] = value
                return self.bb.normalize(symbolic_values.as_tensor(value))
            inputs = self._with_shape_values(entry, inputs, known)
        mapping, label = entry.mapping, entry.label
        if mapping is None:
            return super()._convert_operator(op_name, inputs, attrs, opset)
        onnx_attrs = {
            k: v.decode() if isinstance(v, bytes) else v
            for k, v in attrs.items()
            if k != "tvm_custom"
        }
        if isinstance(mapping, onnx_registry.OnnxConverter):

            def fallback(**replaced: Any) -> relax.Expr:
                return super(_Importer, self)._convert_operator(
                    mapping.op_type, inputs, {**attrs, **replaced}, opset
                )

            onnx_attrs["_num_outputs"] = attrs["tvm_custom"]["num_outputs"]
            onnx_attrs["_input_dtypes"] = entry.input_dtypes
            return self.bb.normalize(mapping.fn(self.bb, inputs, onnx_attrs, fallback))
        while inputs and inputs[-1] is None:
            inputs = inputs[:-1]
        op_attrs = mapping.op.attr_spec.bind(mapping.op_attributes(onnx_attrs))
        inputs = apply_conversions(
            self.bb, mapping.op, list(inputs), op_attrs, label, self._runtime_weights()
        )
        return self.bb.normalize(mapping.op.call_relax(*inputs, **op_attrs))

    def _with_shape_values(
        self,
        entry: _Node,
        inputs: list[relax.Expr],
        known: list[symbolic_values.SymbolicValue | None],
    ) -> list[relax.Expr]:
        """``inputs`` as the converter takes them: a known value as a shape value where
        the node takes a shape, as a tensor everywhere else."""
        domain = onnx_registry.normalize_domain(entry.node.domain)
        takes_shapes = symbolic_values.SHAPE_INPUTS.get(entry.node.op_type, frozenset())
        out = onnx_frontend.onnx_input(inputs)  # reads past the end as None, as TVM's
        for i, (x, value) in enumerate(zip(inputs, known, strict=False)):
            if domain == "" and i in takes_shapes:
                if value is not None:
                    out[i] = self.bb.normalize(symbolic_values.as_relax(value))
            elif value is not None and symbolic_values.is_shape_value(x):
                out[i] = self.bb.normalize(symbolic_values.as_tensor(value))
            elif isinstance(getattr(x, "ty", None), relax.ShapeType):
                out[i] = self.bb.normalize(relax.op.shape_to_tensor(x))  # read at run time
        return out


def from_onnx(
    model: onnx.ModelProto,
    shapes: Mapping[str, Sequence[int | str]] | None = None,
    dtypes: Mapping[str, str] | None = None,
    keep_params_in_input: bool = False,
    source: str = "the ONNX model",
    on_rewrite: Callable[[str, onnx.ModelProto], None] | None = None,
    integer_products: bool = True,
) -> tvm.IRModule:
    """Import ``model`` into Relax; weights become constants in the module, or, with
    ``keep_params_in_input``, parameters of ``main`` after its runtime inputs (its
    ``num_input`` attribute counts those; ``params`` holds the initializers' values).
    ``source`` (the model file) words errors about the whole model. The ONNX-to-ONNX
    rewrites run first, in order: ``integer_qdq`` (quantized products in integers;
    without ``integer_products`` they stay the model's float products) and
    ``packed_types`` (sub-byte tensors in byte carriers); ``on_rewrite(name, model)``
    sees the model after each."""
    validate(model, source)
    _check_ops(model)
    rewritten = integer_qdq(model) if integer_products else model
    if on_rewrite is not None:
        on_rewrite("integer_qdq", rewritten)
    carried, types = carry_packed_types(rewritten)
    if on_rewrite is not None:
        on_rewrite("packed_types", carried)
    renamed, table = _key_nodes(carried, types)
    names = [i.name for i in graph_inputs(model)]
    for name in [*(shapes or {}), *(dtypes or {})]:
        if name not in names:
            raise ModelError(
                f"input {name!r} given a shape or dtype is not a model input; inputs: "
                f"{', '.join(names)}"
            )
    # Only what the user gave: everything else comes from the model, as in TVM's importer.
    # A shape with named dims is written into the model's inputs, where TVM's importer
    # makes one variable per name across all inputs (as for the model's own names).
    named = {n: s for n, s in (shapes or {}).items() if any(isinstance(d, str) for d in s)}
    _name_input_dims(renamed, named)  # renamed is this import's own copy
    shape_dict: dict[str, list[int | str]] = {
        name: list(shape) for name, shape in (shapes or {}).items() if name not in named
    }
    # TVM's importer reads a dimension of 0 as unknown; a declared 0 is a real 0.
    for spec in graph_inputs(model):
        declared = [d for d in spec.shape if isinstance(d, int)]
        if spec.name not in shape_dict and 0 in declared and len(declared) == len(spec.shape):
            shape_dict[spec.name] = list(declared)
    dtype_dict = dict(dtypes or {})
    importer = _Importer(
        table, shape_dict, dtype_dict, keep_params_in_input=keep_params_in_input, sanitize=True
    )
    opset = _opsets(model).get("", 1)
    try:
        # TVM's importer prints "Error converting operator ..." before re-raising; the
        # error raised here says it better (with the node), so its print is dropped.
        with contextlib.redirect_stdout(io.StringIO()):
            return importer.from_onnx(renamed.graph, opset)
    except TvmextError:
        raise
    except Exception as err:
        raise ModelError(f"importing {source} failed: {type(err).__name__}: {err}") from err


def _name_input_dims(model: onnx.ModelProto, shapes: Mapping[str, Sequence[int | str]]) -> None:
    """Give ``model``'s inputs in ``shapes`` those dims, in place: names as
    ``dim_param``, sizes as ``dim_value``; every other dynamic dim without a name gets
    one of its own (``x_dim0``): TVM's importer would make them all one variable."""
    for value in model.graph.input:
        if value.name not in shapes:
            for axis, d in enumerate(value.type.tensor_type.shape.dim):
                if not d.dim_param and not d.HasField("dim_value"):
                    d.dim_param = f"{re.sub(r'[^A-Za-z0-9_]', '_', value.name)}_dim{axis}"
            continue
        dims = value.type.tensor_type.shape.dim
        del dims[:]
        for d in shapes[value.name]:
            if isinstance(d, str):
                dims.add().dim_param = d
            elif d == 0:
                raise ModelError(
                    f"input {value.name!r}: a size 0 beside named dims is ambiguous (TVM reads "
                    f"0 as unknown); give it by name or a positive size"
                )
            else:
                dims.add().dim_value = int(d)


class GraphInput:
    """A model input: name, shape (ints, or strings for symbolic dims) and dtype
    (None for inputs that are not plain tensors, such as optionals)."""

    def __init__(self, name: str, shape: Sequence[int | str], dtype: str | None) -> None:
        self.name, self.shape, self.dtype = name, tuple(shape), dtype

    def __repr__(self) -> str:
        return f"GraphInput({self.name!r}, {list(self.shape)}, {self.dtype!r})"


def graph_inputs(model: onnx.ModelProto) -> list[GraphInput]:
    """The runtime inputs of ``model`` (graph inputs that are not initializers)."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims: list[int | str] = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in tensor.shape.dim
        ]
        known = value.type.HasField("tensor_type") and tensor.elem_type != 0
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if known else None
        inputs.append(GraphInput(value.name, dims, dtype))
    return inputs
