"""Sphinx configuration: the tutorials (executed at build time) and the public API.

Build: ``sphinx-build -W --keep-going -b html docs build/docs``.
"""

from __future__ import annotations

from typing import Any

import tvmext

project = "tvmext"
author = "tvmext developers"
copyright = "tvmext developers"
release = version = tvmext.__version__

extensions = [
    "myst_nb",  # Markdown pages and notebooks (it sets up myst_parser itself)
    "sphinx.ext.autodoc",
]

# docs/tutorials is a symbolic link to ../tutorials: Sphinx reads the notebooks where
# they are, and each runs with tutorials/ as its working directory, as in
# tests/test_tutorials.py (the notebooks use paths relative to it).
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# The notebooks are stored without outputs: every build executes them, and an error
# in any cell (an exception, or a cell running past the timeout) fails the build.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True  # the cell's traceback goes to the build log
nb_execution_timeout = 600  # seconds, per cell
nb_execution_in_temp = False  # run in the notebook's folder
nb_merge_streams = True

# API reference: autodoc on the public names only (docs/api.rst names each one; the
# lazy names of ``tvmext`` resolve through its module __getattr__). The docstrings are
# reST prose, so no napoleon/numpydoc. Types from numpy, TVM and the standard library
# in signatures stay unlinked: intersphinx would need their inventories online, so
# nitpicky mode (which warns on every unlinked type) stays off.
nitpicky = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
python_use_unqualified_type_names = True

html_theme = "pydata_sphinx_theme"
html_title = f"tvmext {release}"
html_theme_options = {"show_toc_level": 2}
html_sidebars = {"index": []}


def _no_borrowed_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """A module-level instance (``training.BASIC``) has no docstring of its own: don't
    repeat its class's under its name; autodoc shows its value instead."""
    if what == "data" and getattr(obj, "__doc__", None) == getattr(type(obj), "__doc__", 0):
        lines.clear()


def setup(app: Any) -> None:
    app.connect("autodoc-process-docstring", _no_borrowed_docstring)
