"""The documentation site builds with warnings as errors, tutorials executed.

The build runs every notebook under tutorials/ (myst-nb, ``nb_execution_mode =
"force"``, an error in any cell fails the build), so this also checks that each
tutorial runs top to bottom.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

import tvmext
import tvmext.training

pytestmark = pytest.mark.onednn  # the tutorials build native layers and use the dnnl target

ROOT = pathlib.Path(__file__).parent.parent
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, f"sphinx-build failed:\n{done.stdout[-6000:]}\n{done.stderr}"
    return out


def _page(site: pathlib.Path, name: str) -> str:
    return (site / name).read_text(encoding="utf-8")


def test_tutorial_plots_are_embedded(site: pathlib.Path) -> None:
    html = _page(site, "tutorials/04_training_ghmc_mode_selection.html")
    images = re.findall(r'<img[^>]*src="(\.\./_images/[^"]+\.png)"', html)
    assert images, "tutorial 04 shows no plot"
    for src in images:
        assert (site / "tutorials" / src).resolve().is_file(), src


def test_tutorial_outputs_are_rendered(site: pathlib.Path) -> None:
    pages = sorted((site / "tutorials").glob("*.html"))
    assert len(pages) == len(list((ROOT / "tutorials").glob("*.ipynb")))
    for page in pages:
        assert 'class="cell_output' in page.read_text(encoding="utf-8"), f"{page.name}: no output"
    html = _page(site, "tutorials/01_custom_operator.html")
    outputs = re.findall(r'<div class="cell_output[^"]*">(.*?)</pre>', html, re.S)
    assert any("gelu passes check_op" in out for out in outputs), "tutorial 01's print is missing"


def test_api_page_documents_public_names(site: pathlib.Path) -> None:
    html = _page(site, "api.html")
    assert 'id="tvmext.compile"' in html
    assert "tvmc-style string" in html  # from tvmext.compile's docstring
    assert 'id="tvmext.testing.check_op"' in html
    assert "listing every problem" in html  # from check_op's docstring
    public = [f"tvmext.{n}" for n in tvmext.__all__]
    public += [f"tvmext.training.{n}" for n in tvmext.training.__all__]
    missing = [name for name in public if f'id="{name}"' not in html]
    assert not missing, f"public names without an API entry: {missing}"
