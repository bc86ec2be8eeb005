"""The package's dependencies flow one way: no import cycle among tvmext's modules
(imports inside functions and under TYPE_CHECKING included), every import goes to the
same layer or a lower one, and no private name is imported from another module."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The package's folders and the package names they are installed as (pyproject.toml).
FOLDERS = {"tvmext": "tvmext", "passes": "tvmext.passes", "target": "tvmext.target"}

# Bottom to top; a module's layer is the first whose pattern matches its name.
LAYERS: list[tuple[str, str]] = [
    (
        "base",
        r"tvmext\.(errors|registry|dims|atomic_file|environment|pass_order"
        r"|runtime\.(cpu_threads|zero_copy|tvm_log))$",
    ),
    (
        "registries",
        r"tvmext\.(pass_registry|onnx\.registry|opdef\.torch_mapping|target\.report"
        r"|opdef\.(attrs|param_conversion|eager_runner|tvm_registration|call_args|primfunc_origin))$",
    ),
    ("op definitions, native build flags", r"tvmext\.(opdef(\..*)?|native)$"),
    ("lowering", r"tvmext\.(lowering(\..*)?|target\.spec)$"),
    (
        "targets, passes, eager calls, runtime, tuning, deployment",
        r"tvmext\.(target|passes|eager|runtime|tuning|deploy)(\..*)?$",
    ),
    (
        "shipped ops, ONNX and PyTorch front ends",
        r"tvmext\.(ops|onnx(?!\.conformance)|torch\.(program|library|op_check))(\..*)?$",
    ),
    ("compile", r"tvmext\.(compiler|compile_options|testing|plugins|_autoload)$"),
    (
        "CLI, tools, training, public API",
        r"tvmext(\.(cli|__main__|onnx\.conformance(_sample)?|onnx_conformance|training(\..*)?"
        r"|torch(\.dynamo_backend)?))?$",
    ),
]


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imports(name: str, path: pathlib.Path) -> list[tuple[str, str | None, int]]:
    """(module imported, name imported from it or None, line) for every import."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, str | None, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    found.append((f"{base}.{alias.name}", None, node.lineno))
                else:
                    found.append((base, alias.name, node.lineno))
    return [(m, n, line) for m, n, line in found if m in MODULES]


EDGES = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> int:
    for i, (_, pattern) in enumerate(LAYERS):
        if re.match(pattern, name):
            return i
    raise AssertionError(f"module {name} is in no layer of tests/test_architecture.py")


def test_every_module_has_a_layer():
    for name in MODULES:
        _layer(name)


def test_no_import_cycle():
    graph = {name: sorted({m for m, _, _ in edges if m != name}) for name, edges in EDGES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_imports_go_to_the_same_layer_or_below():
    upward = [
        f"{name} ({LAYERS[_layer(name)][0]}) imports {target} ({LAYERS[_layer(target)][0]}) "
        f"at {MODULES[name].relative_to(ROOT)}:{line}"
        for name, edges in EDGES.items()
        for target, _, line in edges
        if _layer(target) > _layer(name)
    ]
    assert not upward, "\n".join(upward)


def test_no_private_name_is_imported_from_another_module():
    private = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {imported} from {target}"
        for name, edges in EDGES.items()
        for target, imported, line in edges
        if imported and imported.startswith("_") and target != name
    ]
    assert not private, "\n".join(private)
