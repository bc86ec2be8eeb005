"""Compile options, shared by ``tvmext.compile`` and the command line."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tvmext.errors import CompileError

# What external targets' convolutions and matmuls may compute in.
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class CompileOptions:
    """Everything besides the model, the target and the plugins.

    ``input_shapes``/``input_dtypes`` fix inputs of dynamic models by name; a dimension
    given as a name (``{"input_ids": ("batch", "seq")}``) stays symbolic, one variable
    per name across inputs; ``shape_bounds`` bounds such variables (``{"batch": (1,
    64)}``): memory is planned for the largest shapes, and a run outside a bound is an
    error naming the input and the dimension;
    ``keep_params_in_input`` keeps an ONNX model's weights out of the artifact, as
    parameters bound at run time (:meth:`tvmext.Module.set_params`); weight
    conversions declared in TE then run once, when the weights are bound;
    ``opt_level`` is TVM's ``PassContext`` level; ``tuning_records`` is a JSON file
    written by ``tvmext tune``; ``dump_ir`` is a folder that receives the module
    after every pipeline stage; ``fallback_to_tvm`` lets an external target whose
    generated code fails to compile leave its ops to TVM (the report says why)
    instead of failing the compile; ``verify_schedules`` runs every PrimFunc a tvmext
    schedule produced against the same function unscheduled, on random inputs, and
    fails naming the function, its shapes and the error; ``schedule=False`` lowers
    with TVM's plain rules (no op or default schedules: naive loops), the baseline a
    training mode is compared against.

    ``precision`` is what an external target's convolutions and matmuls compute in:
    ``"fp32"`` (the default), or ``"bf16"`` (oneDNN on CPUs with AVX512-BF16 or AMX;
    the rest stays fp32). A reduced-precision compile also compiles the model in fp32,
    runs both on ``calibration_inputs`` (an ``.npz`` file with one array per input, or
    random inputs) and reports the error of each output (``Module.accuracy``);
    ``max_rel_error`` makes a larger relative error fail the compile.

    A PyTorch ``nn.Module`` is exported with ``example_inputs`` (a tuple of tensors,
    one per ``forward`` argument) and ``dynamic_shapes`` (``torch.export``'s: named
    ``torch.export.Dim`` objects name the symbolic dimensions, as ``input_shapes``
    does for ONNX models).
    """

    input_shapes: Mapping[str, tuple[int | str, ...]] = field(default_factory=dict)
    shape_bounds: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    input_dtypes: Mapping[str, str] = field(default_factory=dict)
    opt_level: int = 3
    tuning_records: str | None = None
    dump_ir: str | None = None
    fallback_to_tvm: bool = False
    keep_params_in_input: bool = False
    verify_schedules: bool = False
    schedule: bool = True
    precision: str = "fp32"
    calibration_inputs: str | None = None
    max_rel_error: float | None = None
    example_inputs: Any = None
    dynamic_shapes: Any = None

    def __post_init__(self) -> None:
        if not 0 <= self.opt_level <= 4:
            raise CompileError(f"opt_level must be in 0..4, got {self.opt_level}")
        if self.precision not in PRECISIONS:
            raise CompileError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.precision == "fp32" and (self.calibration_inputs or self.max_rel_error):
            raise CompileError(
                "calibration_inputs and max_rel_error check a reduced precision; "
                "give precision='bf16' with them"
            )
        if self.max_rel_error is not None and not self.max_rel_error >= 0:
            raise CompileError(f"max_rel_error must be >= 0, got {self.max_rel_error}")
        for name, shape in self.input_shapes.items():
            if not all((isinstance(d, int) and d >= 0) or _is_name(d) for d in shape):
                raise CompileError(
                    f"input {name!r}: shape {list(shape)} must hold non-negative integers "
                    f"or names of symbolic dimensions"
                )
        for name, bound in self.shape_bounds.items():
            if not (_is_name(name) and len(bound) == 2 and 0 <= bound[0] <= bound[1]):
                raise CompileError(
                    f"shape bound {name}={bound}: expected a dimension name and two "
                    f"integers 0 <= low <= high"
                )


_ENTRY = re.compile(r"\s*([^:\s,][^:]*?)\s*:\s*(\[[^\]]*\])\s*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BOUND = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\d+)\s*\.\.\s*(\d+)\s*")


def _is_name(value: object) -> bool:
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def _dims(text: str, shape: str, input_name: str) -> tuple[int | str, ...]:
    """``[1, seq, 768]``: integers and dimension names."""
    inner = shape.strip()[1:-1].strip()
    out: list[int | str] = []
    for item in (part.strip() for part in inner.split(",")) if inner else []:
        if item.isdigit():
            out.append(int(item))
        elif _is_name(item):
            out.append(item)
        else:
            raise CompileError(
                f"input shapes {text!r}: dimension {item!r} of {input_name!r} is neither a "
                f"non-negative integer nor a name"
            )
    return tuple(out)


def _entries(text: str, entry: re.Pattern[str], what: str, expected: str) -> list[re.Match[str]]:
    """The matches of ``entry`` that make up ``text``, separated by spaces or commas;
    anything else is an error naming ``what`` and the ``expected`` form."""
    matches = []
    pos = 0
    while pos < len(text):
        if text[pos] in " ,":
            pos += 1
            continue
        match = entry.match(text, pos)
        if match is None:
            raise CompileError(
                f"{what} {text!r}: cannot parse at {text[pos:]!r}; expected {expected}"
            )
        matches.append(match)
        pos = match.end()
    return matches


def parse_input_shapes(text: str) -> dict[str, tuple[int | str, ...]]:
    """Parse tvmc's ``"x:[1,3,224,224] y:[10]"`` (entries separated by spaces or commas);
    a dimension may be a name (``"input_ids:[batch,seq]"``), which stays symbolic."""
    expected = "NAME:[d0,d1,...] entries such as 'x:[1,3,224,224]'"
    return {
        m.group(1): _dims(text, m.group(2), m.group(1))
        for m in _entries(text, _ENTRY, "input shapes", expected)
    }


def shapes_from(
    value: Mapping[str, Sequence[int | str]] | str | None,
) -> dict[str, tuple[int | str, ...]]:
    """Accept a mapping or a tvmc-style string."""
    if value is None:
        return {}
    if isinstance(value, str):
        return parse_input_shapes(value)
    return {k: tuple(d if isinstance(d, str) else int(d) for d in v) for k, v in value.items()}


def parse_shape_bounds(text: str) -> dict[str, tuple[int, int]]:
    """Parse ``"batch=1..64 seq=1..512"`` (entries separated by spaces or commas)."""
    expected = "NAME=LOW..HIGH entries such as 'batch=1..64'"
    return {
        m.group(1): (int(m.group(2)), int(m.group(3)))
        for m in _entries(text, _BOUND, "shape bounds", expected)
    }


def bounds_from(
    value: Mapping[str, Sequence[int]] | str | None,
) -> dict[str, tuple[int, int]]:
    """Accept a mapping of (low, high) pairs or a ``"batch=1..64"`` string."""
    if value is None:
        return {}
    if isinstance(value, str):
        return parse_shape_bounds(value)
    bounds = {}
    for name, bound in value.items():
        try:
            low, high = bound
            bounds[name] = (int(low), int(high))
        except (TypeError, ValueError) as err:
            raise CompileError(
                f"shape bound {name!r}: {bound!r} is not a (low, high) pair of integers"
            ) from err
    return bounds
