"""Environment variables: declared once (tvmext.environment), read nowhere else, listed
in the documentation."""

from __future__ import annotations

import pathlib
import re

import pytest

from tvmext import environment

ROOT = pathlib.Path(__file__).parent.parent
SOURCES = [ROOT / "tvmext", ROOT / "target", ROOT / "passes"]
# Builds a child process's environment from PATH alone (a standalone application's check
# that it needs nothing else); it reads no setting of tvmext's.
CHILD_ENVIRONMENT = {ROOT / "tvmext" / "deploy" / "libraries.py"}
PYTHON_READ = re.compile(r"os\.(getenv|putenv|environ\s*(\.get|\.setdefault|\[))")


def _files(suffixes: tuple[str, ...]) -> list[pathlib.Path]:
    return [p for root in SOURCES for p in sorted(root.rglob("*")) if p.suffix in suffixes]


def test_python_reads_the_environment_only_through_the_declarations():
    readers = [
        str(p.relative_to(ROOT))
        for p in _files((".py",))
        if p.name != "environment.py"
        and p not in CHILD_ENVIRONMENT
        and PYTHON_READ.search(p.read_text())
    ]
    assert readers == []


def test_native_code_reads_only_declared_variables():
    declared = {v.name for v in environment.VARIABLES}
    used = {
        (str(p.relative_to(ROOT)), name)
        for p in _files((".cc", ".h", ".cu"))
        for name in re.findall(r'\b[gs]etenv\("([A-Za-z_][A-Za-z0-9_]*)"', p.read_text())
    }
    assert used, "the oneDNN runtime reads its variables with getenv"
    assert {(path, name) for path, name in used if name not in declared} == set()


def test_documentation_lists_every_variable():
    page = (ROOT / "docs" / "environment.md").read_text()
    assert environment.table() in page


def test_defaults_and_values(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CXX", raising=False)
    assert environment.CXX.value() == "g++" and not environment.CXX.is_set()
    monkeypatch.setenv("CXX", "")
    assert environment.CXX.get() is None, "an empty variable counts as unset"
    monkeypatch.setenv("CXX", "clang++")
    assert environment.CXX.value() == "clang++"
    environment.CXX.set_unless_set("g++")
    assert environment.CXX.value() == "clang++", "a user's value is kept"
    monkeypatch.setenv("TVMEXT_CACHE_DIR", "~/somewhere")
    assert environment.cache_root() == str(pathlib.Path.home() / "somewhere")
