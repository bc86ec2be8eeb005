"""Compile native layer sources (C++ or CUDA) to cached objects and a loadable library.

Each source compiles to its own object, cached under :func:`cache_dir` by the hash of
its content, the flags, the compiler's version and TVM's version, so an unchanged
source costs nothing and a changed one rebuilds only itself. Objects are what the
exported artifact links in (``export_library`` cannot re-bundle a ``.so``); the shared
library built from the same objects serves in-process calls.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tvmext import environment
from tvmext.errors import NativeBuildError

INCLUDE_DIR = os.path.join(os.path.dirname(__file__), "include")
# The language level and code model of every native layer, here and in a vendor's build
# (tvmext.native).
LANGUAGE_FLAGS = ("-std=c++17", "-fPIC")
_CXX_FLAGS = (*LANGUAGE_FLAGS, "-O3")
_CUDA_FLAGS = ("-std=c++17", "-O3", "-Xcompiler", "-fPIC")


def cache_dir() -> str:
    """The folder holding built objects: ``$TVMEXT_CACHE_DIR`` or ``~/.cache/tvmext``."""
    return os.path.join(environment.cache_root(), "native")


@functools.cache
def tool_version(tool: str) -> str:
    """The first line of ``tool --version`` (part of every cache key: another compiler
    builds anew); a NativeBuildError if the tool cannot run."""
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    except OSError as err:
        raise NativeBuildError(f"compiler {tool!r} is not available: {err}") from err
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else tool


def tvm_include_dirs() -> list[str]:
    """The tvm-ffi and DLPack header folders of the installed wheel."""
    import tvm_ffi.libinfo

    return [tvm_ffi.libinfo.find_include_path(), tvm_ffi.libinfo.find_dlpack_include_path()]


def layer_include_dirs() -> list[str]:
    """The folders a layer source includes from: ``tvmext/layer.h`` and the tvm-ffi and
    DLPack headers (once each; the wheel keeps both in one folder)."""
    return list(dict.fromkeys([INCLUDE_DIR, *tvm_include_dirs()]))


def tvm_ffi_library_dir() -> str:
    """The folder of ``libtvm_ffi.so``, which a layer library links."""
    import tvm_ffi.libinfo

    return os.path.dirname(tvm_ffi.libinfo.find_libtvm_ffi())


@dataclass(frozen=True)
class BuildFlags:
    """User flags for compiling and linking a layer."""

    extra_cflags: tuple[str, ...] = ()
    include_dirs: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()


def cxx_compiler() -> str:
    """The C++ compiler native code is built with: ``$CXX``, else ``g++``."""
    return environment.CXX.value()


def _compiler_for(source: str) -> tuple[str, tuple[str, ...]]:
    if source.endswith(".cu"):
        nvcc = shutil.which("nvcc")
        if nvcc is None:
            raise NativeBuildError(f"{source!r} is CUDA but nvcc is not on PATH")
        return nvcc, _CUDA_FLAGS
    return cxx_compiler(), _CXX_FLAGS


def compile_object(source: str, flags: BuildFlags) -> str:
    """Compile one source into a cached object; return the object's path."""
    if not os.path.isfile(source):
        raise NativeBuildError(f"native source {source!r} does not exist")
    with open(source, "rb") as f:
        content = f.read()
    compiler, base_flags = _compiler_for(source)
    includes = [os.path.abspath(d) for d in flags.include_dirs] + layer_include_dirs()
    command = [compiler, *base_flags, *flags.extra_cflags, *(f"-I{d}" for d in includes), "-c"]
    import tvm

    key = hashlib.sha256()
    for part in (content, repr(command).encode(), tool_version(compiler).encode(),
                 tvm.__version__.encode(), _header_digest().encode()):  # fmt: skip
        key.update(part)
    name = os.path.splitext(os.path.basename(source))[0]
    folder = os.path.join(cache_dir(), key.hexdigest()[:24])
    obj = os.path.join(folder, f"{name}.o")
    if not os.path.isfile(obj):
        produce_file(
            obj,
            lambda tmp: [*command, os.path.abspath(source), "-o", tmp],
            f"compiling {source!r} failed",
            f"source kept at: {os.path.abspath(source)}",
        )
    return obj


def produce_file(
    path: str, command: Callable[[str], list[str]], failure: str, note: str = ""
) -> None:
    """Run ``command(tmp)``, which writes ``tmp`` beside ``path``; rename it on success.

    A failure raises NativeBuildError with the command and the compiler's output and
    leaves no file behind.
    """
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    full = command(tmp)
    done = subprocess.run(full, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        os.unlink(tmp)
        lines = [f"{failure} (exit {done.returncode}).", f"command: {' '.join(full)}"]
        raise NativeBuildError("\n".join([*lines, *([note] if note else []), done.stderr.strip()]))
    os.replace(tmp, path)


@functools.cache
def _header_digest() -> str:
    with open(os.path.join(INCLUDE_DIR, "tvmext", "layer.h"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def shared_library_link_options(libraries: Sequence[str]) -> tuple[str, ...]:
    """Linker options that make an artifact load each of ``libraries`` (absolute paths
    of shared libraries) when it loads: a DT_NEEDED entry by file name (or soname),
    found through an RPATH to the library's folder.

    ``-l:NAME`` rather than the path, which the linker would record as it is and so pin
    the library to that path; old-style DT_RPATH rather than RUNPATH, since it also
    serves the library's own dependencies.
    """
    options: list[str] = []
    by_name: dict[str, str] = {}
    for library in libraries:
        folder, name = os.path.split(library)
        if by_name.setdefault(name, library) != library:
            # -l:NAME finds the first folder's file for both: one op would miss symbols.
            raise NativeBuildError(
                f"shared libraries {by_name[name]!r} and {library!r} have the same file "
                f"name {name!r}; an artifact can load only one of them: rename one"
            )
        options += [f"-L{folder}", "-Wl,--no-as-needed", f"-l:{name}", "-Wl,--as-needed"]
    folders = dict.fromkeys(os.path.dirname(library) for library in libraries)
    if folders:
        options += ["-Wl,--disable-new-dtags", *(f"-Wl,-rpath,{f}" for f in folders)]
    return tuple(options)


def is_shared_library(path: str) -> bool:
    """Whether ``path`` is an ELF shared object (e_type ET_DYN)."""
    with open(path, "rb") as f:
        head = f.read(18)
    return len(head) == 18 and head[:4] == b"\x7fELF" and int.from_bytes(head[16:18], "little") == 3


def link_shared(
    objects: Sequence[str], flags: BuildFlags, shared_libraries: Sequence[str] = ()
) -> str:
    """Link ``objects`` into a cached shared library for in-process calls; it loads
    ``shared_libraries`` (absolute paths) with it."""
    lib_dir = tvm_ffi_library_dir()
    nvcc = shutil.which("nvcc")
    cuda_dirs = [os.path.join(os.path.dirname(os.path.dirname(nvcc)), "lib64")] if nvcc else []
    key_text = repr((sorted(objects), flags.libraries, list(shared_libraries)))
    key = hashlib.sha256(key_text.encode()).hexdigest()[:24]
    folder = os.path.join(cache_dir(), key)
    path = os.path.join(folder, "layer.so")
    if os.path.isfile(path):
        return path
    command = [
        cxx_compiler(),
        "-shared",
        *objects,
        f"-L{lib_dir}",
        "-ltvm_ffi",
        f"-Wl,-rpath,{lib_dir}",
        *(f"-L{d}" for d in cuda_dirs if "cudart" in flags.libraries),
        *(f"-l{lib}" for lib in flags.libraries),
        *shared_library_link_options(shared_libraries),
    ]
    produce_file(
        path, lambda tmp: [*command, "-o", tmp], f"linking {len(objects)} object(s) failed"
    )
    return path


def archive_members(archive: str) -> list[str]:
    """The object files of a static library, extracted once into the cache.

    Linkers take from an archive only the members already referenced; extracting them
    keeps every exported layer function, in process and in exported artifacts.
    """
    if not os.path.isfile(archive):
        raise NativeBuildError(f"static library {archive!r} does not exist")
    with open(archive, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:24]
    folder = os.path.join(cache_dir(), f"archive-{digest}")
    if not os.path.isdir(folder):
        os.makedirs(cache_dir(), exist_ok=True)
        tmp = tempfile.mkdtemp(dir=cache_dir())
        done = subprocess.run(
            ["ar", "x", os.path.abspath(archive)], cwd=tmp, capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            shared = is_shared_library(archive)
            hint = " (a shared library goes to shared_library=)" if shared else ""
            raise NativeBuildError(
                f"{archive!r} is not a static library{hint}: {done.stderr.strip()}"
            )
        os.replace(tmp, folder)
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".o"))


def exported_symbols(library: str) -> list[str]:
    """The tvm-ffi function names a shared library exports (``__tvm_ffi_<name>``)."""
    done = subprocess.run(
        ["nm", "-D", "--defined-only", library], capture_output=True, text=True, check=False
    )
    prefix = "__tvm_ffi_"
    names = [line.split()[-1] for line in done.stdout.splitlines() if line.strip()]
    return sorted(
        n[len(prefix) :] for n in names if n.startswith(prefix) and "__metadata_" not in n
    )
