"""Write an application folder: ``run``, ``model.so``, ``lib/``, ``src/``, ``README.md``.

The runner (``runner/run.cc``) does not depend on the model: it is compiled once per
compiler, TVM and tvm-ffi version into tvmext's cache (:func:`runner_executable`) and
copied. ``lib/`` receives exactly what ``ldd`` says the runner's TVM libraries and the
model load beyond the system's C/C++ runtime (TVM's runtime, tvm-ffi, oneDNN, vendor
libraries of native ops); ``run`` and ``model.so`` find them through the RPATH
``$ORIGIN/lib``. Before the folder is renamed into place, ``ldd`` run with an empty
environment must find every library inside it, so a folder that exists is
self-contained.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import string
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tvmext.atomic_file import check_folder, current_umask
from tvmext.deploy.libraries import (
    bundled_libraries,
    highest_needs,
    is_system_library,
    loaded_libraries,
)
from tvmext.errors import CompileError, TvmextError
from tvmext.opdef.native_build import (
    cache_dir,
    cxx_compiler,
    produce_file,
    tool_version,
    tvm_include_dirs,
)

RUNNER_DIR = os.path.join(os.path.dirname(__file__), "runner")
RUNNER_FILES = ("run.cc", "npy.h")
RUNNER_FLAGS = ("-std=c++17", "-O2")
# run links TVM's runtime by name although it calls none of its functions directly
# (the runtime registers the VM loader when it loads): --no-as-needed keeps it.
RUNNER_LIBS = ("-Wl,--no-as-needed", "-ltvm_runtime", "-ltvm_ffi", "-Wl,--as-needed")
RUNNER_RPATH = ("-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/lib")
# Written into every application folder: only a folder holding it is replaced.
APP_MARKER = ".tvmext-app"


def runtime_libraries() -> list[str]:
    """The TVM libraries the runner links: ``libtvm_runtime.so`` and ``libtvm_ffi.so``."""
    import tvm.libinfo
    import tvm_ffi.libinfo

    return [tvm.libinfo.find_libtvm_runtime(), tvm_ffi.libinfo.find_libtvm_ffi()]


def runner_executable() -> str:
    """The runner, built against the installed wheels' headers and libraries, cached by
    its sources, the compiler and the TVM versions; a NativeBuildError shows the command
    and the compiler's output."""
    import tvm
    import tvm_ffi

    compiler = cxx_compiler()
    lib_dirs = [os.path.dirname(p) for p in runtime_libraries()]
    command = [
        compiler,
        *RUNNER_FLAGS,
        *(f"-isystem{d}" for d in tvm_include_dirs()),
        os.path.join(RUNNER_DIR, "run.cc"),
        *(f"-L{d}" for d in lib_dirs),
        *RUNNER_LIBS,
        *RUNNER_RPATH,
    ]
    key = hashlib.sha256()
    for name in RUNNER_FILES:
        with open(os.path.join(RUNNER_DIR, name), "rb") as f:
            key.update(f.read())
    for part in (repr(command), tool_version(compiler), tvm.__version__, tvm_ffi.__version__):
        key.update(part.encode())
    path = os.path.join(cache_dir(), f"runner-{key.hexdigest()[:24]}", "run")
    if not os.path.isfile(path):
        produce_file(
            path,
            lambda tmp: [*command, "-o", tmp],
            "building the application runner failed",
            f"source kept at: {RUNNER_DIR}",
        )
    return path


_MAKEFILE = """\
# Rebuilds ../run against the libraries in ../lib, with the tvm-ffi headers in include/
# (for a system whose glibc is older than the one ../run was built for).
#   make -B
CXX ?= g++
CXXFLAGS ?= ${flags}

../run: run.cc npy.h
\t$$(CXX) $$(CXXFLAGS) -isystem include run.cc -o $$@ -L../lib ${libs} ${rpath}
"""

_README = """\
# ${name}: an inference application

Built by tvmext with TVM ${tvm_version}. It runs the compiled model
`model.so` on the CPU without Python, TVM's Python package or tvmext.

${description}

## Run

```bash
./run --help                                   # options, and the model's inputs
./run                                          # random inputs; prints each output
./run --inputs in.npz --outputs out.npz        # np.savez(...) in, np.load(...) out
./run --input ${first_input}=x.npy --print-time --repeat 100
```

Inputs are checked against the names, shapes and dtypes above (one line naming the
input, the expected and the given shape, exit status 1). Outputs are named
`output_0`, `output_1`, ... as `tvmext run --outputs` and `tvmext.Module.run` order
them. `TVM_NUM_THREADS` sets the thread count (default: the physical cores).${params_note}

## Requirements

Linux x86-64 with glibc ${glibc} or newer (${glibc_file} needs it) and a libstdc++
providing ${glibcxx} (${glibcxx_file}). The folder can be moved anywhere: `run` and
`model.so` find their libraries in `lib/` (RPATH `$$ORIGIN/lib`) and take nothing from
the system but the C and C++ runtime (libc, libm, libstdc++, libgcc_s, libgomp and the
dynamic loader).

Highest glibc version each file needs:

${glibc_table}

On a system with an older glibc than `run` needs, rebuild `run` there:
`make -B -C src` (a C++17 compiler; the headers are in `src/include`).

## Contents

${contents}
"""


def _template(text: str, **values: str) -> str:
    """``text`` with ``${key}`` filled; a key left without a value is an error."""
    return string.Template(text).substitute(values)


def write_app(
    folder: str,
    write_model: Callable[[str], Any],
    *,
    library_dirs: Sequence[str] = (),
    description: Sequence[str] = (),
    params: Mapping[str, np.ndarray] | None = None,
) -> str:
    """Write the application folder ``folder``; ``write_model(path)`` writes the model's
    artifact at ``path`` (with the RPATH ``$ORIGIN/lib``). ``library_dirs`` are where
    the model's own libraries were found, ``description`` one line per input and weight
    for the README, ``params`` the weights to ship as ``params.npz``. Atomic: built in a
    temporary folder beside ``folder`` and renamed; an existing application folder is
    replaced, any other existing path is an error."""
    folder = os.path.abspath(folder)
    parent = check_app_folder(folder)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.tmp-", dir=parent)
    try:
        _fill(tmp, write_model, library_dirs, description, params, os.path.basename(folder))
        os.chmod(tmp, 0o777 & ~current_umask())
        _replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def check_app_folder(folder: str) -> str:
    """The folder an application ``folder`` would be written into; an error if that is
    missing or ``folder`` exists and is not an application folder (which it replaces)."""
    parent = check_folder(folder)
    if os.path.lexists(folder) and not _is_app(folder):
        raise TvmextError(
            f"cannot write the application to {folder!r}: it exists and is not an "
            f"application folder written by tvmext (no {APP_MARKER} in it); remove it or "
            f"choose another"
        )
    return parent


def _is_app(folder: str) -> bool:
    return os.path.isdir(folder) and os.path.isfile(os.path.join(folder, APP_MARKER))


def _replace(tmp: str, folder: str) -> None:
    """Rename ``tmp`` to ``folder``, moving an earlier application folder aside first
    (a folder cannot be renamed over a non-empty one)."""
    if not os.path.lexists(folder):
        os.rename(tmp, folder)
        return
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.old-", dir=os.path.dirname(folder))
    os.rename(folder, os.path.join(old, "app"))
    try:
        os.rename(tmp, folder)
    except OSError:
        os.rename(os.path.join(old, "app"), folder)  # the earlier application stays
        os.rmdir(old)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _fill(
    tmp: str,
    write_model: Callable[[str], Any],
    library_dirs: Sequence[str],
    description: Sequence[str],
    params: Mapping[str, np.ndarray] | None,
    name: str,
) -> None:
    run, model, lib = (os.path.join(tmp, n) for n in ("run", "model.so", "lib"))
    shutil.copyfile(runner_executable(), run)
    os.chmod(run, 0o777 & ~current_umask())
    write_model(model)
    runtime = runtime_libraries()
    search = [*library_dirs, *(os.path.dirname(p) for p in runtime)]
    bundle = {os.path.basename(p): os.path.realpath(p) for p in runtime}
    for needed, source in bundled_libraries([*runtime, model], search).items():
        bundle.setdefault(needed, source)
    os.makedirs(lib)
    for needed, source in sorted(bundle.items()):
        shutil.copyfile(source, os.path.join(lib, needed))
        shutil.copymode(source, os.path.join(lib, needed))
    _check_self_contained(tmp, run, model)
    _write_sources(os.path.join(tmp, "src"))
    if params is not None:
        with open(os.path.join(tmp, "params.npz"), "wb") as f:
            weights: dict[str, Any] = dict(params)
            np.savez(f, **weights)
    _write_readme(tmp, name, description, params is not None)


def _check_self_contained(tmp: str, run: str, model: str) -> None:
    """Every library ``run`` and then ``model`` load, in an empty environment, is in
    ``tmp`` or the system's C/C++ runtime: an error naming the first that is not.

    ``run`` loads ``model`` once its own libraries are loaded, and the loader reuses a
    loaded library for every later request of its soname: so the model's needs are
    met by ``run``'s libraries first (which also makes a copied vendor library's RPATH
    to its build folder irrelevant for libraries ``run`` has loaded).
    """
    inside = os.path.realpath(tmp) + os.sep
    loaded = loaded_libraries(run)
    for path, libraries in ((run, loaded), (model, loaded_libraries(model))):
        for needed, where in libraries.items():
            where = loaded.get(needed, where)
            if is_system_library(needed):
                continue
            if where is None or not os.path.realpath(where).startswith(inside):
                raise CompileError(
                    f"the application's {os.path.relpath(path, tmp)} loads {needed!r} from "
                    f"{where or 'nowhere (not found)'}, outside the application folder"
                )


def _write_sources(src: str) -> None:
    os.makedirs(src)
    for name in RUNNER_FILES:
        shutil.copyfile(os.path.join(RUNNER_DIR, name), os.path.join(src, name))
    with open(os.path.join(src, "Makefile"), "w") as f:
        f.write(
            _template(
                _MAKEFILE,
                flags=" ".join(RUNNER_FLAGS),
                libs=" ".join(RUNNER_LIBS),
                rpath=" ".join(f"'{o}'" if "$" in o else o for o in RUNNER_RPATH).replace(
                    "$", "$$"
                ),
            )
        )
    include = os.path.join(src, "include")
    for headers in tvm_include_dirs():
        for entry in sorted(os.listdir(headers)):
            source = os.path.join(headers, entry)
            # The tvm-ffi headers and DLPack; not the Python helpers beside them.
            if os.path.isdir(source) and not os.path.exists(os.path.join(include, entry)):
                shutil.copytree(source, os.path.join(include, entry))


def _size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def _write_readme(tmp: str, name: str, description: Sequence[str], has_params: bool) -> None:
    import tvm

    lib = os.path.join(tmp, "lib")
    binaries = [os.path.join(tmp, "run"), os.path.join(tmp, "model.so")]
    binaries += [os.path.join(lib, n) for n in sorted(os.listdir(lib))]
    per_file = {os.path.relpath(p, tmp): highest_needs([p]).get("GLIBC") for p in binaries}
    highest = highest_needs(binaries)
    glibc, glibcxx = highest.get("GLIBC"), highest.get("GLIBCXX")
    entries = ["run", "model.so", *(f"lib/{n}" for n in sorted(os.listdir(lib))), "src/"]
    entries += ["params.npz"] if has_params else []
    contents = "\n".join(f"- `{e}`: {_megabytes(_size(os.path.join(tmp, e)))}" for e in entries)
    params_note = (
        "\n\nThe model takes its weights at run time: `run` binds `params.npz` (beside it) "
        "unless given `--params OTHER.npz` with the same names and shapes."
        if has_params
        else ""
    )
    inputs = [line.split()[1].rstrip(":") for line in description if line.startswith("input")]
    text = _template(
        _README,
        name=name,
        tvm_version=tvm.__version__,
        description="\n".join(f"- {line}" for line in description) or "- (no inputs)",
        first_input=inputs[0] if inputs else "x",
        params_note=params_note,
        glibc=glibc.name.removeprefix("GLIBC_") if glibc else "(any)",
        glibc_file=os.path.relpath(glibc.file, tmp) if glibc else "no file",
        glibcxx=glibcxx.name if glibcxx else "any GLIBCXX version",
        glibcxx_file=os.path.relpath(glibcxx.file, tmp) if glibcxx else "no file",
        glibc_table="\n".join(f"- `{f}`: {n.name if n else 'none'}" for f, n in per_file.items()),
        contents=contents,
    )
    with open(os.path.join(tmp, APP_MARKER), "w") as f:
        f.write("written by tvmext's export_app; this folder is replaced by the next one\n")
    with open(os.path.join(tmp, "README.md"), "w") as f:
        f.write(text)
