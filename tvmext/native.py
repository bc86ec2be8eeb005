"""What a build outside tvmext needs to compile and link a native layer library (a
vendor's ``.so`` or ``.a`` for ``tvmext.native_op(shared_library=...)``), as
``python -m pybind11 --includes`` or ``torch.utils.cpp_extension.include_paths()`` do
for theirs. From the shell: ``tvmext native-flags [--cflags | --ldflags]``::

    g++ -O2 -shared $(tvmext native-flags --cflags) my_layer.cc \
        $(tvmext native-flags --ldflags) -o libmy_layer.so

(the libraries after the sources: linkers that drop unneeded libraries judge them by
the objects before them).
"""

from __future__ import annotations

from tvmext.opdef.native_build import LANGUAGE_FLAGS, layer_include_dirs, tvm_ffi_library_dir


def include_dirs() -> list[str]:
    """The folders holding ``tvmext/layer.h`` and the tvm-ffi and DLPack headers it
    includes."""
    return layer_include_dirs()


def library_dirs() -> list[str]:
    """The folder of ``libtvm_ffi.so``, which a layer library links."""
    return [tvm_ffi_library_dir()]


def libraries() -> list[str]:
    """The libraries a layer library links, by ``-l`` name."""
    return ["tvm_ffi"]


def compile_flags() -> list[str]:
    """Compiler flags for a layer source: language level, ``-fPIC``, include folders."""
    return [*LANGUAGE_FLAGS, *(f"-I{d}" for d in include_dirs())]


def link_flags() -> list[str]:
    """Linker flags for a layer library: its libraries, found through an RPATH."""
    dirs = library_dirs()
    return [
        *(f"-L{d}" for d in dirs),
        *(f"-l{name}" for name in libraries()),
        *(f"-Wl,-rpath,{d}" for d in dirs),
    ]
