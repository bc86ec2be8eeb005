"""Where oneDNN is: headers and ``libdnnl.so`` from the ``onednn``/``onednn-devel`` wheels.

The wheels install into the environment's prefix (``<prefix>/include``,
``<prefix>/lib``). Artifacts link ``libdnnl.so`` with an RPATH to that folder (old-style
``DT_RPATH``, which also covers libdnnl's own dependencies there: TBB, SVML, SYCL),
so a loaded artifact finds it without ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass

from tvmext.errors import CompileError

_INSTALL = "pip install onednn==2026.1.0 onednn-devel==2026.1.0"


@dataclass(frozen=True)
class OneDnn:
    """The include folder and library folder of an installed oneDNN."""

    include_dir: str
    lib_dir: str

    def link_options(self) -> tuple[str, ...]:
        """Linker options for an artifact that calls oneDNN. TVM puts options before the
        objects, so ``--no-as-needed`` keeps libdnnl, which only the objects reference."""
        return (
            f"-L{self.lib_dir}",
            "-Wl,--no-as-needed",
            "-ldnnl",
            "-Wl,--as-needed",
            "-Wl,--disable-new-dtags",
            f"-Wl,-rpath,{self.lib_dir}",
        )


ROOT_VARIABLE = "TVMEXT_ONEDNN_ROOT"


@functools.cache
def find_onednn() -> OneDnn:
    """The oneDNN under ``$TVMEXT_ONEDNN_ROOT`` if set, else the one installed beside this
    Python; a CompileError says how to get it."""
    chosen = os.environ.get(ROOT_VARIABLE)
    prefixes = (chosen,) if chosen else (sys.prefix, sys.base_prefix)
    for prefix in dict.fromkeys(prefixes):
        include = os.path.join(prefix, "include")
        lib = os.path.join(prefix, "lib")
        if os.path.isfile(os.path.join(include, "dnnl.hpp")) and os.path.isfile(
            os.path.join(lib, "libdnnl.so")
        ):
            return OneDnn(include, lib)
    where = chosen or sys.prefix
    raise CompileError(
        f"the dnnl target needs oneDNN's headers and libdnnl.so in {where}/include "
        f"and {where}/lib; install them with: {_INSTALL}"
    )
