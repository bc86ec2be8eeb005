"""tvmext: custom operators, native layers and vendor libraries for Apache TVM.

``import tvmext`` is cheap; TVM is imported on first use of an attribute below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .cpu_threads import use_physical_cores
from .errors import (
    CompileError,
    ModelError,
    NativeBuildError,
    OpCallError,
    OpDefinitionError,
    PluginError,
    ShapeError,
    TvmextError,
)

if TYPE_CHECKING:
    from .compile_options import CompileOptions
    from .compiler import compile, tune
    from .custom_op import CustomOp, op
    from .module import Module, load
    from .native_layer import NativeOp, native_op
    from .plugins import load_plugins
    from .target_spec import TargetSpec, parse_target

__version__ = "0.1.0"

use_physical_cores()  # before TVM's thread pool starts (see tvmext.cpu_threads)

_LAZY = {
    "compile": "compiler",
    "tune": "compiler",
    "CompileOptions": "compile_options",
    "Module": "module",
    "load": "module",
    "load_plugins": "plugins",
    "op": "custom_op",
    "native_op": "native_layer",
    "NativeOp": "native_layer",
    "CustomOp": "custom_op",
    "parse_target": "target_spec",
    "TargetSpec": "target_spec",
}

__all__ = [
    "CompileError",
    "CompileOptions",
    "CustomOp",
    "ModelError",
    "Module",
    "NativeBuildError",
    "NativeOp",
    "OpCallError",
    "OpDefinitionError",
    "PluginError",
    "ShapeError",
    "TargetSpec",
    "TvmextError",
    "compile",
    "load",
    "load_plugins",
    "native_op",
    "op",
    "parse_target",
    "tune",
]


_SUBMODULES = ("ops", "testing", "training")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        from . import _autoload

        _autoload.autoload()
        return importlib.import_module(f".{name}", __name__)
    if name not in _LAZY:
        raise AttributeError(f"module 'tvmext' has no attribute {name!r}")
    from . import _autoload

    _autoload.autoload()
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value
