"""A vendor's prebuilt shared library of a layer, built in a test from a C++ source
with the flags ``tvmext native-flags`` prints, as a vendor's own build would."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

NATIVE = pathlib.Path(__file__).parent / "native"


def build_vendor_library(folder: pathlib.Path, source: str = "leaky_relu.cc") -> pathlib.Path:
    """``folder/lib<name>.so`` built from ``tests/native/<source>`` with ``g++ -O2
    -shared $(tvmext native-flags)``: linked against tvm-ffi with an RPATH to it."""
    cli = os.path.join(os.path.dirname(sys.executable), "tvmext")
    flags = subprocess.run(
        [cli, "native-flags"], capture_output=True, text=True, check=True
    ).stdout.split()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"lib{pathlib.Path(source).stem}.so"
    subprocess.run(["g++", "-O2", "-shared", str(NATIVE / source), "-o", str(out), *flags],
                   check=True)  # fmt: skip
    return out
