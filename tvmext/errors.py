"""The errors tvmext raises for problems a user can cause.

Every message names the object at fault (op, input, node, file), what was given
and what was expected. Catch :class:`TvmextError` to handle all of them.
"""

from __future__ import annotations


class TvmextError(Exception):
    """Base class of every user-facing tvmext error."""


class OpDefinitionError(TvmextError, TypeError):
    """An op declaration is invalid (bad signature, duplicate name, unknown target)."""


class OpCallError(TvmextError, TypeError):
    """An op was called with inputs or attributes that do not fit its declaration."""


class ShapeError(TvmextError, ValueError):
    """An input's shape or dtype does not fit what the op or model expects."""


class CompileError(TvmextError, RuntimeError):
    """Compiling a model, an op or generated code failed."""


class NativeBuildError(CompileError):
    """A C++/CUDA source did not compile or link; carries the command and diagnostics."""


class ScheduleVerificationError(CompileError):
    """A schedule changed what a PrimFunc computes (found by ``verify_schedules``)."""


class TuningError(CompileError):
    """Tuning failed: its child process crashed or stalled, or no candidate ran."""


class ModelError(TvmextError, ValueError):
    """A model file is unreadable or malformed, or uses an op nobody registered."""


class PluginError(TvmextError, ImportError):
    """A plugin could not be found or failed while loading."""


def register_with_tvm_ffi() -> None:
    """Let these errors cross TVM's FFI (e.g. raised in type inference) with their type."""
    import tvm_ffi

    for cls in (
        OpDefinitionError,
        OpCallError,
        ShapeError,
        CompileError,
        NativeBuildError,
        ScheduleVerificationError,
        ModelError,
        PluginError,
    ):
        tvm_ffi.register_error(cls.__name__, cls)
