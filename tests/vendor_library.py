"""A vendor's prebuilt shared library of a layer, built in a test from a C++ source."""

from __future__ import annotations

import os
import pathlib
import subprocess

from tvmext.opdef.native_build import INCLUDE_DIR, tvm_include_dirs

NATIVE = pathlib.Path(__file__).parent / "native"


def build_vendor_library(folder: pathlib.Path, source: str = "leaky_relu.cc") -> pathlib.Path:
    """``folder/lib<name>.so`` built from ``tests/native/<source>`` with ``g++ -shared
    -fPIC``, linked against tvm-ffi (with an RPATH to it) as a vendor would ship it."""
    import tvm_ffi.libinfo

    lib_dir = os.path.dirname(tvm_ffi.libinfo.find_libtvm_ffi())
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"lib{pathlib.Path(source).stem}.so"
    includes = [f"-I{d}" for d in (INCLUDE_DIR, *tvm_include_dirs())]
    subprocess.run(["g++", "-std=c++17", "-O2", "-shared", "-fPIC", *includes,
                    str(NATIVE / source), "-o", str(out), f"-L{lib_dir}", "-ltvm_ffi",
                    f"-Wl,-rpath,{lib_dir}"], check=True)  # fmt: skip
    return out
