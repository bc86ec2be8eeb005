"""Plugins: Python modules or files that declare ops, passes and targets on import.

A plugin is named by a module name (``acme_ops``), a path to a ``.py`` file, or the
name of an entry point in the group ``tvmext.plugins`` (installed packages). Every
registry entry remembers the file that defined it, so ``tvmext ops`` can say where
each op, pass and target came from.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterable
from types import ModuleType

from tvmext.errors import PluginError

ENTRY_POINT_GROUP = "tvmext.plugins"
_loaded: dict[str, ModuleType] = {}


def _from_file(path: str) -> ModuleType:
    if not os.path.isfile(path):
        raise PluginError(f"plugin file {path!r} does not exist")
    digest = hashlib.sha1(path.encode()).hexdigest()[:10]
    name = f"tvmext_plugin_{os.path.splitext(os.path.basename(path))[0]}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin file {path!r} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return _entry_points_on(tuple(sys.path))


@functools.lru_cache(maxsize=1)
def _entry_points_on(path: tuple[str, ...]) -> dict[str, importlib.metadata.EntryPoint]:
    """The plugins installed on the import path ``path``: scanning every distribution's
    metadata costs about 10 ms, and each compile asks, so once per import path."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_plugin(spec: str) -> ModuleType:
    """Import plugin ``spec`` once (a file once whatever path names it); failures raise
    PluginError naming it and why."""
    is_file = spec.endswith(".py") or os.sep in spec
    key = os.path.realpath(spec) if is_file else spec
    if key in _loaded:
        return _loaded[key]
    from tvmext import _autoload

    _autoload.autoload()
    try:
        if is_file:
            module = _from_file(key)
        elif spec in _entry_points():
            module = _entry_points()[spec].load()
        else:
            module = importlib.import_module(spec)
    except PluginError:
        raise
    except ModuleNotFoundError as err:
        if err.name == spec or (err.name and spec.startswith(err.name + ".")):
            raise PluginError(
                f"plugin {spec!r} not found: not a .py file, an installed "
                f"'{ENTRY_POINT_GROUP}' entry point or an importable module"
            ) from err
        raise PluginError(f"plugin {spec!r} failed to load: {err}") from err
    except Exception as err:
        raise PluginError(f"plugin {spec!r} failed to load: {type(err).__name__}: {err}") from err
    _loaded[key] = module
    return module


def load_plugins(specs: Iterable[str] = (), *, installed: bool = True) -> list[ModuleType]:
    """Register tvmext's own ops and passes, then load the installed entry-point plugins
    (if ``installed``) and ``specs``."""
    from tvmext import _autoload

    _autoload.autoload()
    names = list(_entry_points()) if installed else []
    return [load_plugin(s) for s in [*names, *specs]]


def installed_plugins() -> list[str]:
    """Names of the plugins installed through the ``tvmext.plugins`` entry points."""
    return sorted(_entry_points())
