"""``torch.compile(model, backend="tvmext", options={"target": ...})``.

Registered through PyTorch's ``torch_dynamo_backends`` entry point. Each graph dynamo
captures is compiled by :func:`tvmext.compile` when it is first called with a new
input signature (shapes, dtypes and the values of integer inputs), and the compiled
module is kept for that signature: a graph dynamo made dynamic runs at static speed
for each size it meets. Graph breaks are dynamo's business: what it cannot capture runs
in PyTorch eager.

Inference: the model's parameters become the compiled module's constants when a
signature is compiled (as inductor's ``freezing`` does), so weights changed in place
afterwards are not seen. Training (grad mode on and an input or parameter that
requires grad) goes through ``aot_autograd``: its forward and backward ATen graphs are
both compiled by tvmext, parameters as inputs.

``options`` holds ``target`` (default: the host's fastest, as ``tvmext.compile``) and
any other :class:`tvmext.CompileOptions` field by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from tvmext.compiler import compile as tvmext_compile
from tvmext.runtime.module import Module
from tvmext.torch.library import as_array, as_tensor


def tvmext_backend(
    graph: torch.fx.GraphModule,
    example_inputs: Sequence[Any],
    options: dict[str, Any] | None = None,
) -> Callable[..., Any]:
    """The dynamo backend: a callable running ``graph`` through tvmext."""
    values = dict(options or {})
    target = values.pop("target", None)
    training = torch.is_grad_enabled() and any(
        isinstance(x, torch.Tensor) and x.requires_grad for x in example_inputs
    )
    if not training:
        return _Signatures(graph, target, values, freeze=True)
    from torch._dynamo.backends.common import aot_autograd
    from torch._functorch.aot_autograd import make_boxed_func

    def compile_graph(aten_graph: torch.fx.GraphModule, _: Sequence[Any]) -> Callable[..., Any]:
        return make_boxed_func(_Signatures(aten_graph, target, values, freeze=False))

    return aot_autograd(fw_compiler=compile_graph, bw_compiler=compile_graph)(graph, example_inputs)


class _Frozen(torch.nn.Module):
    """``graph`` called on the tensors that change from call to call (its parameter
    inputs held as buffers, constants of the compiled module; its integer inputs at
    their values), returning its tensor outputs at ``outputs``."""

    def __init__(
        self, graph: torch.fx.GraphModule, args: Sequence[Any], free: list[int], outputs: list[int]
    ):
        super().__init__()
        self.graph_module = graph
        self.args = [None if isinstance(a, torch.Tensor) else a for a in args]
        self.free = free
        self.fixed = [
            i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and i not in free
        ]
        for i in self.fixed:
            self.register_buffer(f"weight_{i}", args[i].detach())
        self.outputs = outputs

    def forward(self, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        args = list(self.args)
        for i, value in zip(self.free, values, strict=True):
            args[i] = value
        for i in self.fixed:
            args[i] = getattr(self, f"weight_{i}")
        flat = _flat(self.graph_module(*args))
        return tuple(flat[i] for i in self.outputs)


@dataclass
class _Compiled:
    """One signature of a graph: the module, which arguments it takes, and the graph's
    outputs that are not tensors (aot_autograd's forward returns sizes for the
    backward) by position."""

    module: Module
    free: list[int]
    constants: dict[int, Any]
    count: int
    container: type | None  # None: the graph returns one tensor

    def __call__(self, args: Sequence[Any]) -> Any:
        tensors = iter(self.module.run(*(as_array(args[i]) for i in self.free)))
        flat = [
            self.constants[i] if i in self.constants else as_tensor(next(tensors))
            for i in range(self.count)
        ]
        return flat[0] if self.container is None else self.container(flat)


class _Signatures:
    """A captured graph, compiled once per input signature."""

    def __init__(
        self, graph: torch.fx.GraphModule, target: Any, options: dict[str, Any], *, freeze: bool
    ) -> None:
        self.graph = graph
        self.target = target
        self.options = options
        self.freeze = freeze
        self.compiled: dict[tuple[Any, ...], _Compiled] = {}

    def __call__(self, *args: Any) -> Any:
        key = tuple(
            (tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else (type(a), a) for a in args
        )
        compiled = self.compiled.get(key)
        if compiled is None:
            # In a thread of its own: the call may come from inside aot_autograd's
            # function, whose thread-local modes torch.export must not run under.
            with ThreadPoolExecutor(1) as pool:
                compiled = self.compiled[key] = pool.submit(self._compile, args).result()
        return compiled(args)

    def _compile(self, args: Sequence[Any]) -> _Compiled:
        free = [
            i
            for i, a in enumerate(args)
            if isinstance(a, torch.Tensor)
            and not (self.freeze and isinstance(a, torch.nn.Parameter))
        ]
        with torch.no_grad():  # one eager run tells which outputs are tensors
            sample = self.graph(*args)
        flat = _flat(sample)
        outputs = [i for i, v in enumerate(flat) if isinstance(v, torch.Tensor)]
        model = _Frozen(self.graph, args, free, outputs)
        inputs = tuple(args[i].detach() for i in free)
        module = tvmext_compile(model, self.target, example_inputs=inputs, **self.options)
        constants = {i: v for i, v in enumerate(flat) if i not in outputs}
        container = type(sample) if isinstance(sample, list | tuple) else None
        return _Compiled(module, free, constants, len(flat), container)


def _flat(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]
