"""tvmext: custom operators, native layers and vendor libraries for Apache TVM.

``import tvmext`` is cheap; TVM is imported on first use of an attribute below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tvmext.errors import (
    CompileError,
    ModelError,
    NativeBuildError,
    OpCallError,
    OpDefinitionError,
    PluginError,
    ShapeError,
    TuningError,
    TvmextError,
)

if TYPE_CHECKING:
    from tvmext.compile_options import CompileOptions
    from tvmext.compiler import compile, tune
    from tvmext.opdef.declaration import CustomOp, op
    from tvmext.opdef.native_layer import NativeOp, native_op
    from tvmext.plugins import load_plugins
    from tvmext.runtime.module import Module, load
    from tvmext.target.spec import TargetSpec, parse_target
    from tvmext.tuning.rpc import RpcTracker

__version__ = "0.1.0"

_LAZY = {
    "compile": "tvmext.compiler",
    "tune": "tvmext.compiler",
    "CompileOptions": "tvmext.compile_options",
    "Module": "tvmext.runtime.module",
    "load": "tvmext.runtime.module",
    "load_plugins": "tvmext.plugins",
    "op": "tvmext.opdef.declaration",
    "CustomOp": "tvmext.opdef.declaration",
    "native_op": "tvmext.opdef.native_layer",
    "NativeOp": "tvmext.opdef.native_layer",
    "parse_target": "tvmext.target.spec",
    "TargetSpec": "tvmext.target.spec",
    "RpcTracker": "tvmext.tuning.rpc",
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
    "RpcTracker",
    "ShapeError",
    "TargetSpec",
    "TuningError",
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
        from tvmext import _autoload

        _autoload.autoload()
        return importlib.import_module(f"tvmext.{name}")
    if name not in _LAZY:
        raise AttributeError(f"module 'tvmext' has no attribute {name!r}")
    from tvmext import _autoload

    _autoload.autoload()
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
