"""The ``tvm.backends`` entry point: ``import tvm`` registers tvmext's ops.

TVM calls :func:`autoload` at the end of ``import tvm`` (unless
``TVM_DEVICE_BACKEND_AUTOLOAD=0``). It registers the shipped ops, installs the eager
runner and makes ``R.tvmext.*`` parseable in TVMScript: nothing else. Passes, ONNX
converters and targets register when the compiler, the importer or a target string
first needs them. When tvmext itself triggered ``import tvm`` the hook returns at once
and tvmext finishes loading on first use instead.
"""

from __future__ import annotations

import sys

_done = False


def _importing_tvmext() -> bool:
    return any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
        if name == "tvmext" or name.startswith("tvmext.")
    ) or ("tvm" in sys.modules and not hasattr(sys.modules["tvm"], "relax"))


def autoload() -> None:
    """Register tvmext's ops, eager runner and TVMScript namespace (idempotent)."""
    global _done
    if _done or _importing_tvmext():
        return  # a tvmext module triggered `import tvm`: it finishes loading on first use
    _done = True
    from tvmext import eager, ops
    from tvmext.opdef import script_namespace

    script_namespace.install()
    del eager, ops
