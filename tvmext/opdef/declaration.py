"""``@tvmext.op``: a TE compute function becomes a real Relax operator.

The op is registered in TVM's op registry as ``relax.tvmext.<ns.name>`` with
``FInferType`` (traced from the compute), ``FLegalize`` (``bb.call_te``),
``FPrimalGradient`` (a companion op ``relax.tvmext_grad.<ns.name>``, lowered only
after ``relax.transform.Gradient`` has run) and ``FPurity``
(:mod:`tvmext.opdef.tvm_registration`). Attributes travel as
``ir.DictAttrs`` so that modules print without metadata and parse back
(``R.tvmext.ns.name(x, eps=1e-06)``; see :mod:`tvmext.opdef.script_namespace`).

Registering a second gradient, schedule (per target kind) or ONNX mapping for an op is
an error naming the first, unless ``replace=True``; ``replace=True`` on :func:`op`
swaps the whole definition.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tvm
from tvm import relax, te

from tvmext.dims import dims
from tvmext.errors import OpCallError, OpDefinitionError, ShapeError, register_with_tvm_ffi
from tvmext.onnx import registry as onnx_registry
from tvmext.opdef import torch_mapping, tvm_registration
from tvmext.opdef.attrs import Attr, AttrSpec
from tvmext.opdef.call_args import outputs_and_grads, placeholders
from tvmext.opdef.eager_runner import run_eagerly
from tvmext.opdef.param_conversion import KINDS, ParamConversion
from tvmext.opdef.primfunc_origin import origin_attrs
from tvmext.registry import Registry, caller_location

register_with_tvm_ffi()

OPS: Registry[CustomOp] = Registry("op")

# Attribute of a gradient op: the indices of the inputs it differentiates.
_WRT = "tvmext_wrt"
_KIND = re.compile(r"^[a-z_][a-z0-9_]*$")


class CustomOp:
    """A Relax operator declared from Python. Create it with :func:`op`."""

    def __init__(
        self,
        name: str,
        compute: Callable[..., Any],
        tensors: Sequence[str] | None,
        attrs: AttrSpec,
        infer: Callable[..., Any] | None = None,
        primal: CustomOp | None = None,
    ) -> None:
        self.name = name
        self.compute = compute
        self.tensor_names = None if tensors is None else tuple(tensors)
        self.attr_spec = attrs
        self.infer_fn = infer
        self.primal = primal
        self.gradient_fn: Callable[..., Any] | None = None
        self._gradient_origin = ""
        self.schedules: Registry[Callable[..., Any]] = Registry(
            f"schedule of op {name!r} for target kind", key_pattern=_KIND
        )
        self.reference_fn: Callable[..., Any] | None = None
        self.param_conversions: dict[str, ParamConversion] = {}
        self.origin = ""
        self.eager_cache: dict[Any, Any] = {}
        self._grad_op: CustomOp | None = None

    # ----------------------------------------------------------------- identity
    @property
    def tvm_name(self) -> str:
        """The name in TVM's op registry: ``relax.tvmext.<ns.name>``, and
        ``relax.tvmext_grad.<ns.name>`` for the gradient companion."""
        if self.primal is not None:
            return tvm_registration.GRADIENT_PREFIX + self.name
        return tvm_registration.PREFIX + self.name

    @property
    def tvm_op(self) -> tvm.ir.Op:
        """The registered ``tvm.ir.Op``."""
        return tvm.ir.Op.get(self.tvm_name)

    def __repr__(self) -> str:
        return f"<tvmext op {self.name!r} defined at {self.origin}>"

    # --------------------------------------------------------------- decorators
    def gradient(self, fn: Callable[..., Any] | None = None, *, replace: bool = False) -> Any:
        """Declare the gradient: ``g(*inputs, *outputs, *output_grads, **attrs)``.

        It returns one TE tensor (or ``None`` for no gradient) per input. Use it as
        ``@op.gradient`` or ``@op.gradient(replace=True)``; a second gradient without
        ``replace=True`` is an error naming the first.
        """
        origin = caller_location(2)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            if self.gradient_fn is not None and not replace:
                raise OpDefinitionError(
                    f"op {self.name!r} already has a gradient (declared at "
                    f"{self._gradient_origin}); pass replace=True to redefine it"
                )
            self.gradient_fn, self._gradient_origin = fn, origin
            return fn

        return register if fn is None else register(fn)

    def schedule(
        self, target_kind: str, *, replace: bool = False
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare the schedule for ``target_kind`` (``"llvm"``, ``"cuda"``; a TVM target
        kind, ``"cpu"``/``"gpu"`` as aliases).

        The function receives a ``tvm.s_tir.Schedule`` of the op's PrimFunc and, as
        keywords, the op attributes it names and ``target`` if it names it; it
        transforms the schedule in place. A second schedule for the same kind without
        ``replace=True`` is an error naming the first.
        """
        kind = _target_kind(self.name, target_kind)
        origin = caller_location(2)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.schedules.add(kind, fn, origin, replace=replace)
            return fn

        return register

    def reference(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Declare the NumPy reference with the compute's signature."""
        self.reference_fn = fn
        return fn

    def onnx(
        self,
        domain: str,
        op_type: str,
        since_version: int = 1,
        attrs: Mapping[str, str] | None = None,
        *,
        replace: bool = False,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Map ONNX nodes ``domain::op_type`` (opset >= ``since_version``) to this op.

        ONNX inputs map to op inputs by position; ONNX attributes map by name, renamed
        by ``attrs`` (``{onnx_name: op_name}``). Used as a decorator, it takes a function
        from the node's attribute dict to the op's attributes instead.
        """
        origin = caller_location(2)
        mapping = onnx_registry.OnnxMapping(
            domain, op_type, since_version, self, dict(attrs or {}), None, origin
        )
        onnx_registry.register(mapping, replace=replace)

        def convert_attributes(fn: Callable[..., Any]) -> Callable[..., Any]:
            onnx_registry.register(dataclasses.replace(mapping, convert_attrs=fn), replace=True)
            return fn

        return convert_attributes

    def torch(
        self, qualname: str, attrs: Mapping[str, str] | None = None, *, replace: bool = False
    ) -> None:
        """Map PyTorch custom op ``qualname`` (``"vendor::name"``: a C++ extension's op
        or a ``torch.library.custom_op``) to this op when a program is imported.

        Tensor arguments map to op inputs in order; the other arguments map to
        attributes by name, renamed by ``attrs`` (``{torch_name: op_name}``). tvmext's
        own ops need no mapping: ``import tvmext.torch`` makes them PyTorch ops.
        """
        mapping = torch_mapping.TorchMapping(qualname, self, dict(attrs or {}), caller_location(2))
        torch_mapping.register(mapping, replace=replace)

    def convert_param(
        self, input_name: str, *, kind: str = "numpy"
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare how a weight input is converted from the standard format to the one
        this op needs: ``fn(array, **attrs) -> array`` in NumPy (``kind="numpy"``), or
        ``fn(w: te.Tensor, **attrs) -> te.Tensor`` in TE (``kind="te"``).

        The importer converts constant weights (ONNX initializers) once, at compile
        time, so the artifact holds converted weights. A TE conversion also applies
        to weights kept as runtime inputs (``keep_params_in_input=True``): it is lifted
        into ``main_transform_params``, which runs once when weights are bound. A
        NumPy conversion of a weight that is not a constant is an error naming the
        node. See :mod:`tvmext.opdef.param_conversion`.
        """
        if self.tensor_names is not None and input_name not in self.tensor_names:
            raise OpDefinitionError(
                f"op {self.name!r}: convert_param names unknown input {input_name!r}; "
                f"inputs are {', '.join(self.tensor_names)}"
            )
        if kind not in KINDS:
            raise OpDefinitionError(
                f"op {self.name!r}: convert_param({input_name!r}) kind must be one of "
                f"{', '.join(KINDS)}, got {kind!r}"
            )

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.param_conversions[input_name] = ParamConversion(fn, kind)
            return fn

        return register

    # ------------------------------------------------------------------ calling
    def __call__(self, *args: Any, **attrs: Any) -> Any:
        """Build a Relax call (on Relax expressions) or run eagerly (on NumPy arrays)."""
        if any(isinstance(a, relax.Expr) for a in args):
            return self.call_relax(*args, **attrs)
        return run_eagerly(self, args, attrs)

    def call_relax(self, *args: Any, **attrs: Any) -> relax.Call:
        """Return ``relax.Call`` of this op on ``args`` with validated attributes."""
        self.check_arity(len(args))
        bound = self.attr_spec.bind(attrs)
        exprs = [a if isinstance(a, relax.Expr) else relax.const(np.asarray(a)) for a in args]
        return relax.Call(self.tvm_op, exprs, self.attr_spec.encode(bound))

    def check_arity(self, n: int) -> None:
        """Raise ``OpCallError`` unless the op takes ``n`` tensor inputs."""
        if self.tensor_names is not None and n != len(self.tensor_names):
            raise OpCallError(
                f"op {self.name!r} takes {len(self.tensor_names)} tensor input(s) "
                f"({', '.join(self.tensor_names)}), got {n}"
            )

    def input_name(self, i: int) -> str:
        """Name of the ``i``-th tensor input, for error messages."""
        if self.tensor_names is not None and i < len(self.tensor_names):
            return self.tensor_names[i]
        return f"#{i}"

    # ----------------------------------------------------------------- tracing
    def trace(
        self, tensors: Sequence[te.Tensor], attrs: dict[str, Any]
    ) -> tuple[list[te.Tensor], bool]:
        """Run the compute on TE tensors; return its outputs as a list and whether it
        returned a tuple (multiple outputs)."""
        try:
            out = self.compute(*tensors, **attrs)
        except (OpCallError, ShapeError, OpDefinitionError):
            raise
        except Exception as err:
            shapes = ", ".join(
                f"{self.input_name(i)}: {dims(t.shape)} {t.dtype}" for i, t in enumerate(tensors)
            )
            raise ShapeError(
                f"op {self.name!r}: compute failed for inputs ({shapes}): "
                f"{type(err).__name__}: {err}"
            ) from err
        is_tuple = isinstance(out, list | tuple)
        outs = list(out) if is_tuple else [out]
        for o in outs:
            if not isinstance(o, te.Tensor):
                raise OpDefinitionError(
                    f"op {self.name!r}: compute must return a te.Tensor or a tuple of them, "
                    f"got {type(o).__name__}"
                )
        return outs, is_tuple

    def infer_call_type(self, call: relax.Call) -> relax.Type:
        """The type of ``call`` of this op (``FInferType``): the declared inference, or
        traced from the compute."""
        self.check_arity(len(call.args))
        attrs = self.attr_spec.decode(call.attrs)
        if self.infer_fn is not None:
            return self.infer_fn(*(a.ty for a in call.args), **attrs)
        outs, is_tuple = self.trace(placeholders(self.name, call, self.input_name), attrs)
        types = [relax.TensorType(list(o.shape), o.dtype) for o in outs]
        if self.primal is not None or is_tuple:
            return relax.TupleType(types)
        return types[0]

    def legalize_call(self, bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        """Lower ``call`` of this op to ``call_tir`` of its compute (``FLegalize``)."""
        attrs = self.attr_spec.decode(call.attrs)

        def compute(*tensors: te.Tensor) -> Any:
            outs, _ = self.trace(tensors, dict(attrs))
            return outs if len(outs) > 1 else outs[0]

        lowered = bb.call_te(
            compute,
            *call.args,
            primfunc_name_hint=self.name.replace(".", "_") + ("_grad" if self.primal else ""),
            primfunc_attrs=origin_attrs(self.tvm_name, attrs),
        )
        # call_te returns a plain tensor for a one-element list; keep the declared tuple.
        if isinstance(call.ty, relax.TupleType) and len(call.ty.fields) == 1:
            return relax.Tuple([bb.emit(lowered)])
        return lowered

    def call_gradient(
        self,
        orig_var: relax.Var,
        orig_call: relax.Call,
        output_grad: relax.Var,
        ctx: relax.BlockBuilder,
    ) -> list[relax.Expr]:
        """One partial per argument of ``orig_call`` (``FPrimalGradient``), from the
        companion gradient op."""
        outputs, out_grads = outputs_and_grads(orig_var, output_grad, ctx)
        attrs = self.attr_spec.decode(orig_call.attrs)
        return self.gradient_calls(list(orig_call.args), outputs, out_grads, attrs, ctx)

    def gradient_calls(
        self,
        inputs: Sequence[relax.Expr],
        outputs: Sequence[relax.Expr],
        out_grads: Sequence[relax.Expr],
        attrs: dict[str, Any],
        ctx: relax.BlockBuilder,
        wanted: Sequence[bool] | None = None,
    ) -> list[relax.Expr]:
        """One partial per input, emitted into ``ctx`` from the gradient op: zeros for an
        input the declared gradient leaves out, or that ``wanted`` does not ask for."""
        bound = self.attr_spec.bind(attrs)
        shapes = [
            (_static_or_symbolic(self, v), v.ty.dtype) for v in [*inputs, *outputs, *out_grads]
        ]
        wrt = self.differentiated_inputs(shapes, len(inputs), bound, wanted)
        partials: list[relax.Expr] = [relax.op.zeros_like(x) for x in inputs]
        if wrt:
            grad_call = self.gradient_op().call_relax(
                *inputs, *outputs, *out_grads, **bound, **{_WRT: wrt}
            )
            result = ctx.emit(grad_call)
            for k, i in enumerate(wrt):
                partials[i] = ctx.emit(relax.TupleGetItem(result, k))
        return partials

    @property
    def has_gradient(self) -> bool:
        """Whether a gradient is declared."""
        return self.gradient_fn is not None

    def eager_gradients(
        self,
        inputs: Sequence[np.ndarray],
        outputs: Sequence[np.ndarray],
        output_grads: Sequence[np.ndarray],
        attrs: dict[str, Any],
        wanted: Sequence[bool],
    ) -> list[np.ndarray | None]:
        """The gradients of the ``wanted`` inputs (None for the others and for inputs
        the declared gradient leaves out), computed eagerly by the gradient op."""
        bound = self.attr_spec.bind(attrs)
        shapes = [(a.shape, str(a.dtype)) for a in [*inputs, *outputs, *output_grads]]
        wrt = self.differentiated_inputs(shapes, len(inputs), bound, wanted)
        grads: list[np.ndarray | None] = [None] * len(inputs)
        if wrt:
            args = [*inputs, *outputs, *output_grads]
            result = run_eagerly(self.gradient_op(), args, {**bound, _WRT: wrt})
            for i, value in zip(wrt, result, strict=True):
                grads[i] = value
        return grads

    def differentiated_inputs(
        self,
        shapes: Sequence[tuple[Any, str]],
        count: int,
        attrs: dict[str, Any],
        wanted: Sequence[bool] | None = None,
    ) -> tuple[int, ...]:
        """The inputs (of the first ``count`` of ``shapes``: inputs, then outputs and
        their gradients) the declared gradient differentiates and ``wanted`` asks for,
        learned by tracing it on placeholders."""
        tensors = [te.placeholder(shape, dtype) for shape, dtype in shapes]
        grads = self._call_gradient(tensors[:count], tensors[count:], dict(attrs))
        return tuple(
            i for i, g in enumerate(grads) if g is not None and (wanted is None or wanted[i])
        )

    def gradient_op(self) -> CustomOp:
        """The companion op computing this op's input gradients."""
        if self._grad_op is None:
            spec = AttrSpec(self.name, (*self.attr_spec.attrs, Attr(_WRT, (int,), ())))
            self._grad_op = CustomOp(self.name, self._grad_compute, None, spec, primal=self)
            self._grad_op.origin = self.origin
        return self._grad_op

    def _grad_compute(self, *tensors: te.Tensor, **attrs: Any) -> list[te.Tensor]:
        wrt = attrs.pop(_WRT)
        n_in = len(self.tensor_names or ())
        grads = self._call_gradient(tensors[:n_in], tensors[n_in:], attrs)
        return [grads[i] for i in wrt]

    def _call_gradient(
        self, inputs: Sequence[te.Tensor], rest: Sequence[te.Tensor], attrs: dict[str, Any]
    ) -> list[te.Tensor | None]:
        if self.gradient_fn is None:
            raise OpDefinitionError(
                f"op {self.name!r} has no gradient; declare one with @{self.name.split('.')[-1]}"
                f".gradient"
            )
        out = self.gradient_fn(*inputs, *rest, **attrs)
        grads = list(out) if isinstance(out, list | tuple) else [out]
        if len(grads) != len(inputs):
            raise OpDefinitionError(
                f"op {self.name!r}: gradient returned {len(grads)} value(s), expected one "
                f"per input ({len(inputs)}: {', '.join(self.tensor_names or ())})"
            )
        for i, (g, x) in enumerate(zip(grads, inputs, strict=True)):
            if g is None:
                continue
            if not isinstance(g, te.Tensor):
                raise OpDefinitionError(
                    f"op {self.name!r}: gradient for input {self.input_name(i)!r} must be a "
                    f"te.Tensor or None, got {type(g).__name__}"
                )
            if len(g.shape) != len(x.shape) or g.dtype != x.dtype:
                raise OpDefinitionError(
                    f"op {self.name!r}: gradient for input {self.input_name(i)!r} has shape "
                    f"{dims(g.shape)} {g.dtype}, expected {dims(x.shape)} {x.dtype}"
                )
        return grads


def _static_or_symbolic(op: CustomOp, value: relax.Expr) -> list[Any]:
    """The dims of a tensor argument of ``op``'s gradient (symbolic ones kept)."""
    ty = value.ty
    if not isinstance(ty, relax.TensorType) or not isinstance(ty.shape, relax.ShapeExpr):
        raise ShapeError(
            f"op {op.name!r}: its gradient needs tensors of known rank and dims, got {ty}"
        )
    return list(ty.shape.values)


def _target_kind(op_name: str, kind: Any) -> str:
    """``kind`` as a TVM target kind (``"cpu"``/``"gpu"`` as aliases), or an error
    listing the known kinds."""
    known = sorted(tvm.target.Target.list_kinds())
    name = kind.strip().split()[0] if isinstance(kind, str) and kind.strip() else ""
    name = {"cpu": "llvm", "gpu": "cuda"}.get(name, name)
    if name not in known:
        raise OpDefinitionError(
            f"op {op_name!r}: schedule() needs a TVM target kind, got {kind!r}; known "
            f"kinds: {', '.join(known)} (and 'cpu', 'gpu')"
        )
    return name


def op(
    name: str,
    *,
    infer: Callable[..., Any] | None = None,
    replace: bool = False,
    doc: str | None = None,
) -> Callable[[Callable[..., Any]], CustomOp]:
    """Declare a Relax operator ``name`` (``"ns.name"``) from a TE compute function.

    The function takes the input tensors positionally and the attributes as
    keyword-only arguments with defaults, and returns a ``te.Tensor`` or a tuple of
    them. ``infer(*input_types, **attrs)`` may override the traced output type.
    """
    origin = caller_location(2)

    def decorate(compute: Callable[..., Any]) -> CustomOp:
        tensors, spec = AttrSpec.from_signature(name, compute)
        if not tensors:
            raise OpDefinitionError(f"op {name!r}: compute takes no tensor inputs")
        custom = CustomOp(name, compute, tensors, spec, infer=infer)
        custom.origin = origin
        custom.__doc__ = doc or compute.__doc__
        OPS.check_free(name, replace=replace)
        install(custom)  # before OPS.add: its listeners may build calls of the op
        OPS.add(name, custom, origin, replace=replace)
        return custom

    return decorate


def find_op(tvm_name: str) -> CustomOp | None:
    """The op object (a user op or a gradient companion) registered under a TVM op
    name, or ``None``."""
    found = tvm_registration.find(tvm_name)
    return found if isinstance(found, CustomOp) else None


def install(custom: CustomOp) -> None:
    """Register ``custom`` and its gradient companion with TVM."""
    tvm_registration.install(custom, custom.__doc__ or custom.name)
    grad = custom.gradient_op()
    tvm_registration.install(grad, f"Input gradients of {custom.name}")
