"""Which shared libraries an ELF file loads, and which glibc and libstdc++ it needs.

Both come from the system's tools: ``ldd`` (the dynamic loader itself, so its answer
is the loader's: RPATHs, ``$ORIGIN``, sonames) and ``objdump -p`` (the version
references, e.g. ``GLIBC_2.34`` required from ``libc.so.6``). An application ships
every library it loads except those of the system's C and C++ runtime
(:data:`SYSTEM_LIBRARY`), which every Linux system has and which must match its kernel
and loader.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tvmext.errors import CompileError

# The C and C++ runtime libraries an application takes from the system it runs on.
SYSTEM_LIBRARY = re.compile(
    r"^(linux-vdso|linux-gate|ld-linux(-[\w-]+)?|libc|libm|libstdc\+\+|libgcc_s|libgomp"
    r"|libpthread|libdl|librt)\.so(\.[\d.]+)?$"
)
_NEEDED = re.compile(r"^\s*(\S+)\s+=>\s+(.+?)(\s+\(0x[0-9a-f]+\))?$")
_DIRECT = re.compile(r"^\s*(\S+)\s+\(0x[0-9a-f]+\)$")
_VERSION = re.compile(r"^\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+\d+\s+(\w+?)_(\d+(?:\.\d+)*)$")


def is_system_library(name: str) -> bool:
    """Whether ``name`` (a soname or path) is one of the system's C/C++ runtime libraries."""
    return SYSTEM_LIBRARY.match(os.path.basename(name)) is not None


def _run(command: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, check=False, env=env)
    except OSError as err:
        raise CompileError(f"{command[0]!r} is not available: {err}") from err
    if done.returncode != 0:
        raise CompileError(
            f"{' '.join(command)} failed (exit {done.returncode}): {done.stderr.strip()}"
        )
    return done.stdout


def loaded_libraries(path: str, search: Iterable[str] = ()) -> dict[str, str | None]:
    """Every library the loader loads for ``path`` (by the name it looks for: a soname or
    a DT_NEEDED entry) and where it finds it (None: not found). ``search`` folders are
    tried after ``path``'s own RPATH, as ``LD_LIBRARY_PATH``; nothing else of this
    process's environment is passed on."""
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    folders = ":".join(search)
    if folders:
        env["LD_LIBRARY_PATH"] = folders
    found: dict[str, str | None] = {}
    for line in _run(["ldd", path], env).splitlines():
        needed = _NEEDED.match(line)
        direct = _DIRECT.match(line)
        if needed:
            where = needed.group(2).strip()
            found[needed.group(1)] = None if where == "not found" else where
        elif direct:
            found[os.path.basename(direct.group(1))] = direct.group(1)
    return found


def bundled_libraries(paths: Iterable[str], search: Iterable[str] = ()) -> dict[str, str]:
    """The libraries that ``paths`` load, beyond the system's C/C++ runtime: name ->
    the file to copy (symbolic links followed). An error names a library not found and
    the file that needs it."""
    search = list(search)
    bundle: dict[str, str] = {}
    for path in paths:
        for name, where in loaded_libraries(path, search).items():
            if is_system_library(name):
                continue
            if where is None:
                raise CompileError(
                    f"{path!r} needs {name!r}, which is found neither through its RPATH nor "
                    f"in {', '.join(search) or 'the system folders'}"
                )
            bundle.setdefault(name, os.path.realpath(where))
    return bundle


@dataclass(frozen=True)
class VersionNeed:
    """The highest version of one symbol-version family (``GLIBC``, ``GLIBCXX``, ...)
    that one file needs."""

    family: str
    version: tuple[int, ...]
    file: str

    @property
    def name(self) -> str:
        return f"{self.family}_{'.'.join(map(str, self.version))}"


def version_needs(path: str) -> dict[str, VersionNeed]:
    """The highest version ``path`` requires of each family (``objdump -p``'s version
    references), by family."""
    needs: dict[str, VersionNeed] = {}
    for line in _run(["objdump", "-p", path]).splitlines():
        match = _VERSION.match(line)
        if match:
            family, version = match.group(1), tuple(int(p) for p in match.group(2).split("."))
            if family not in needs or needs[family].version < version:
                needs[family] = VersionNeed(family, version, path)
    return needs


def highest_needs(paths: Iterable[str]) -> dict[str, VersionNeed]:
    """Over several files: the highest version of each family, and the file needing it."""
    highest: dict[str, VersionNeed] = {}
    for path in paths:
        for family, need in version_needs(path).items():
            if family not in highest or highest[family].version < need.version:
                highest[family] = need
    return highest
