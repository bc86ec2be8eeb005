"""The README's code example runs as written."""

from __future__ import annotations

import pathlib

README = pathlib.Path(__file__).parent.parent / "README.md"


def test_readme_example_runs():
    code = README.read_text().split("```python", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["scaled_tanh"].name == "mylib.scaled_tanh"
