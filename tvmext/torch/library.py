"""A tvmext op as a real PyTorch custom op: ``mylib.scaled_tanh`` is
``torch.ops.mylib.scaled_tanh``.

Each op becomes a ``torch.library`` definition in its namespace: the schema lists the
tensor inputs, then the attributes as keyword-only arguments with their defaults; the
CPU kernel is tvmext's eager call (compiled once per signature); the fake (meta)
implementation is the op's own shape inference, run on symbolic dims where PyTorch
has them (``torch.export`` with dynamic dims, ``torch.compile(dynamic=True)``); the
autograd formula calls a second op, ``<name>_tvmext_backward``, whose kernel is the
declared gradient run eagerly, so that ``torch.compile`` and ``torch.export`` trace
the backward as one op too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from tvm import relax, tirx

from tvmext.errors import OpCallError, OpDefinitionError, ShapeError
from tvmext.opdef.declaration import CustomOp
from tvmext.opdef.eager_runner import run_eagerly
from tvmext.opdef.torch_mapping import torch_qualname

BACKWARD_SUFFIX = "_tvmext_backward"
_SCHEMA_TYPES = {float: "float", int: "int", bool: "bool", str: "str"}
# Rank of the example inputs the number of outputs is learned from, most likely first.
_PROBE_RANKS = (2, 4, 3, 1, 5, 0)
# The torch.library fragments holding each op's definition, kept alive (and destroyed
# when the op is redefined).
_LIBRARIES: dict[str, list[torch.library.Library]] = {}


def register(op: CustomOp) -> None:
    """Define ``op`` (and its backward) in PyTorch, replacing an earlier definition of
    the same name."""
    qualname = torch_qualname(op.name)
    namespace, name = qualname.split("::")
    for library in _LIBRARIES.pop(qualname, []):
        library._destroy()
    forward = torch.library.Library(namespace, "FRAGMENT")
    backward = torch.library.Library(namespace, "FRAGMENT")
    _LIBRARIES[qualname] = [forward, backward]
    outputs = _output_count(op)
    forward.define(name + _schema(op, "Tensor" if outputs is None else _tuple(outputs)))
    forward.impl(name, _kernel(op, outputs), "CPU")
    torch.library.register_fake(qualname, _fake(op), lib=forward)
    grad_name = name + BACKWARD_SUFFIX
    backward.define(
        grad_name + _schema(op, "Tensor[]", "Tensor[] inputs, Tensor[] outputs, "
                            "Tensor[] output_grads, bool[] wanted")
    )  # fmt: skip
    backward.impl(grad_name, _backward_kernel(op), "CPU")
    torch.library.register_fake(f"{namespace}::{grad_name}", _backward_fake, lib=backward)
    grad_op = getattr(getattr(torch.ops, namespace), grad_name).default
    setup, formula = _autograd(op, grad_op)
    torch.library.register_autograd(qualname, formula, setup_context=setup, lib=forward)


def overload(op: CustomOp) -> Any:
    """``torch.ops.<namespace>.<name>.default`` of ``op`` (AttributeError before it is
    registered)."""
    namespace, name = torch_qualname(op.name).split("::")
    return getattr(getattr(torch.ops, namespace), name).default


def _tuple(count: int) -> str:
    return "(" + ", ".join(["Tensor"] * count) + ")"


def _schema(op: CustomOp, returns: str, tensors: str | None = None) -> str:
    """``(Tensor x, *, float eps=1e-06) -> returns``: the op's tensor inputs (or
    ``tensors``), then its attributes keyword-only."""
    args = [tensors or ", ".join(f"Tensor {n}" for n in op.tensor_names or ())]
    attrs = [
        f"{_attr_type(op, a.name, a.kind)} {a.name}={_literal(a.default)}"
        for a in op.attr_spec.attrs
    ]
    return "(" + ", ".join(args + (["*", *attrs] if attrs else [])) + f") -> {returns}"


def _attr_type(op: CustomOp, name: str, kind: Any) -> str:
    if kind in _SCHEMA_TYPES:
        return _SCHEMA_TYPES[kind]
    if kind == (int,):
        return "int[]"
    raise OpDefinitionError(f"op {op.name!r}: attribute {name!r} has no PyTorch schema type")


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return repr(value)


def _output_count(op: CustomOp) -> int | None:
    """How many outputs the op returns as a tuple (None: one tensor, not a tuple): from
    the compute's return annotation (``-> tuple[te.Tensor, te.Tensor]``), else learned
    from its shape inference on example inputs of a few ranks."""
    annotated = _annotated_count(op.compute)
    if annotated != 0:
        return annotated
    names = list(op.tensor_names or ())
    for rank in _PROBE_RANKS:
        for symbolic in (False, True):
            args = [
                relax.Var(n, relax.TensorType(
                    [tirx.Var(f"{n}_{i}", "int64") if symbolic else 4 for i in range(rank)],
                    "float32",
                ))
                for n in names
            ]  # fmt: skip
            try:
                result = op.infer_call_type(op.call_relax(*args))
            except Exception:  # this rank does not fit the op; try the next
                continue
            return len(result.fields) if isinstance(result, relax.TupleType) else None
    return None


def _annotated_count(compute: Callable[..., Any]) -> int | None:
    """The outputs a return annotation names: None for one tensor, N for a tuple of N,
    0 when it says nothing (no annotation, ``tuple[te.Tensor, ...]``)."""
    annotation = inspect.signature(compute).return_annotation
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if annotation is inspect.Signature.empty or not isinstance(text, str):
        return 0
    text = text.replace(" ", "")
    if text in ("te.Tensor", "Tensor"):
        return None
    for prefix in ("tuple[", "Tuple["):
        if text.startswith(prefix) and text.endswith("]") and "..." not in text:
            return len(text[len(prefix) : -1].split(","))
    return 0


def as_array(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as a NumPy array (no copy for a plain CPU tensor)."""
    return tensor.numpy(force=True)


def as_tensor(value: Any) -> Any:
    """NumPy results (an array or a tuple of them) as PyTorch tensors owning their
    memory."""
    if isinstance(value, tuple | list):
        return tuple(as_tensor(v) for v in value)
    return torch.from_numpy(np.array(value, copy=True))


def _kernel(op: CustomOp, outputs: int | None) -> Callable[..., Any]:
    count = len(op.tensor_names or ())

    def kernel(*args: Any, **attrs: Any) -> Any:
        result = run_eagerly(op, [as_array(t) for t in args[:count]], attrs)
        if isinstance(result, tuple) != (outputs is not None):
            raise OpDefinitionError(
                f"op {op.name!r} returned {len(result) if isinstance(result, tuple) else 1} "
                f"output(s), but its PyTorch schema says {outputs or 1}: annotate its compute's "
                f"return (-> tuple[te.Tensor, te.Tensor] or -> te.Tensor)"
            )
        return as_tensor(result)

    return kernel


def _fake(op: CustomOp) -> Callable[..., Any]:
    def fake(*args: torch.Tensor, **attrs: Any) -> Any:
        try:
            return _fake_outputs(op, args, attrs, symbolic=True)
        except (ShapeError, OpCallError):
            # The op needs some dims to be numbers (a state of exactly ``bins``
            # entries): PyTorch then specializes them, and guards on their values.
            return _fake_outputs(op, args, attrs, symbolic=False)

    return fake


def _fake_outputs(
    op: CustomOp, args: Sequence[torch.Tensor], attrs: dict[str, Any], *, symbolic: bool
) -> Any:
    """Empty tensors shaped as ``op``'s outputs on ``args``; PyTorch's symbolic dims
    stay symbolic (equal dims one variable) unless not ``symbolic``."""
    symbols: dict[str, Any] = {}  # tirx var name: PyTorch SymInt
    by_expr: dict[str, tirx.Var] = {}
    inputs = []
    for name, tensor in zip(op.tensor_names or (), args, strict=True):
        shape: list[Any] = []
        for axis, dim in enumerate(tensor.shape):
            if symbolic and isinstance(dim, torch.SymInt):
                var = by_expr.setdefault(str(dim.node.expr), tirx.Var(f"{name}_{axis}", "int64"))
                symbols[var.name] = dim
                shape.append(var)
            else:
                shape.append(int(dim))
        inputs.append(relax.Var(name, relax.TensorType(shape, _tvm_dtype(tensor.dtype))))
    result = op.infer_call_type(op.call_relax(*inputs, **attrs))
    fields = list(result.fields) if isinstance(result, relax.TupleType) else [result]
    empties = tuple(
        args[0].new_empty(
            [_torch_dim(op, d, symbols) for d in t.shape.values], dtype=getattr(torch, str(t.dtype))
        )
        for t in fields
    )
    return empties if isinstance(result, relax.TupleType) else empties[0]


def _tvm_dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


_DIM_OPS: dict[type, Callable[[Any, Any], Any]] = {
    tirx.Add: lambda a, b: a + b,
    tirx.Sub: lambda a, b: a - b,
    tirx.Mul: lambda a, b: a * b,
    tirx.FloorDiv: lambda a, b: a // b,
    tirx.FloorMod: lambda a, b: a % b,
    tirx.Min: lambda a, b: torch.sym_min(a, b),
    tirx.Max: lambda a, b: torch.sym_max(a, b),
}


def _torch_dim(op: CustomOp, expr: Any, symbols: dict[str, Any]) -> Any:
    """An output dim of the shape inference as a PyTorch int or SymInt."""
    if isinstance(expr, tirx.IntImm):
        return int(expr.value)
    if isinstance(expr, tirx.Var) and expr.name in symbols:
        return symbols[expr.name]
    if isinstance(expr, tirx.Cast):
        return _torch_dim(op, expr.value, symbols)
    combine = _DIM_OPS.get(type(expr))
    if combine is None:
        raise OpDefinitionError(
            f"op {op.name!r}: PyTorch cannot follow output dimension {expr} of its shape "
            f"inference (it takes + - * // % min max of input dims)"
        )
    return combine(_torch_dim(op, expr.a, symbols), _torch_dim(op, expr.b, symbols))


def _backward_kernel(op: CustomOp) -> Callable[..., Any]:
    def kernel(
        inputs: Sequence[torch.Tensor],
        outputs: Sequence[torch.Tensor],
        output_grads: Sequence[torch.Tensor],
        wanted: Sequence[bool],
        **attrs: Any,
    ) -> list[torch.Tensor]:
        grads = op.eager_gradients(
            [as_array(t) for t in inputs],
            [as_array(t) for t in outputs],
            [as_array(t) for t in output_grads],
            attrs,
            wanted,
        )
        # The schema has no optional tensors in a list: inputs without a gradient get
        # zeros, which the autograd formula turns back into None.
        return [
            torch.zeros_like(x) if g is None else as_tensor(g)
            for x, g in zip(inputs, grads, strict=True)
        ]

    return kernel


def _backward_fake(inputs: Sequence[torch.Tensor], *_: Any, **__: Any) -> list[torch.Tensor]:
    return [torch.empty_like(x) for x in inputs]


def _autograd(op: CustomOp, grad_op: Any) -> tuple[Callable[..., None], Callable[..., Any]]:
    """``setup_context`` and ``backward`` for ``torch.library.register_autograd``."""
    count = len(op.tensor_names or ())

    def save(ctx: Any, inputs: tuple[Any, ...], attrs: dict[str, Any], output: Any) -> None:
        outputs = tuple(output) if isinstance(output, tuple | list) else (output,)
        ctx.save_for_backward(*inputs[:count], *outputs)
        ctx.attrs = attrs

    if op.attr_spec.attrs:

        def setup(
            ctx: Any, inputs: tuple[Any, ...], keyword_only_inputs: dict[str, Any], output: Any
        ) -> None:
            save(ctx, inputs, dict(keyword_only_inputs), output)
    else:

        def setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:  # type: ignore[misc]
            save(ctx, inputs, {}, output)

    def backward(ctx: Any, *output_grads: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if not op.has_gradient:
            raise OpDefinitionError(
                f"op {op.name!r} has no gradient, so PyTorch cannot differentiate through it; "
                f"declare one with @{op.name.split('.')[-1]}.gradient"
            )
        saved = ctx.saved_tensors
        wanted = [bool(w) for w in ctx.needs_input_grad[:count]]
        grads = grad_op(
            list(saved[:count]), list(saved[count:]), list(output_grads), wanted, **ctx.attrs
        )
        return tuple(g if w else None for g, w in zip(grads, wanted, strict=True))

    return setup, backward
