"""What ``pip install`` gives a user: the wheel built from this checkout, installed with its
dependencies into a fresh virtual environment outside the checkout, used from there.

The environment is made by the README's install commands. An editable install
(``pip install -e``) reads the checkout, so a file missing from the
wheel (a header, a runtime source, a subpackage left out of ``packages``) goes unnoticed
by the rest of the suite. Here the package is imported from the fresh environment's
site-packages only: no PYTHONPATH, no user site, a working directory outside the checkout.

The wheel is built from a copy of the checkout's files (tracked and untracked, not
ignored), so a stale ``build/`` folder cannot slip files into it and nothing is written
into the checkout.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
import zipfile

import numpy as np
import pytest

pytestmark = [pytest.mark.native]  # the installed package builds a native layer

ROOT = pathlib.Path(__file__).resolve().parent.parent
NATIVE_SOURCES = (".h", ".hh", ".hpp", ".c", ".cc", ".cpp", ".cu", ".cuh")
NOT_PACKAGED = {".git", ".venv", "build", "dist", "tests", "__pycache__"}

BUILD_TIMEOUT = 600
INSTALL_TIMEOUT = 1200
RUN_TIMEOUT = 600

TIMES: dict[str, float] = {}


def _run(cmd, *, timeout: float, what: str, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd``; fail showing its output if it fails or runs past ``timeout`` seconds."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"{what}: no answer after {timeout} s\nstdout:\n{err.stdout}\n"
                    f"stderr:\n{err.stderr}")  # fmt: skip
    TIMES[what] = time.perf_counter() - start
    assert done.returncode == 0, (
        f"{what} failed (exit {done.returncode}): {' '.join(map(str, cmd))}\n"
        f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-8000:]}"
    )
    return done


def _checkout_files() -> list[pathlib.Path]:
    """The checkout's files, relative to ROOT: tracked and untracked-but-not-ignored."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        names = [pathlib.Path(n) for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk it
        names = [
            p.relative_to(ROOT)
            for p in ROOT.rglob("*")
            if p.is_file()
            and not NOT_PACKAGED & set(p.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in p.parts)
        ]
    return [n for n in names if (ROOT / n).is_file()]  # tracked files may be deleted


def _package_dirs() -> dict[str, str]:
    """pyproject's ``[tool.setuptools.package-dir]``: package name -> folder (read, not
    copied, since the list changes); without one, packages live at the root."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dirs = config.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    return {name: folder.strip("/") for name, folder in dirs.items()} or {"": ""}


def _wheel_path(relative: pathlib.Path, package_dirs: dict[str, str]) -> str | None:
    """Where the checkout file ``relative`` lands in the wheel, or None if in no package."""
    path = relative.as_posix()
    best: tuple[str, str] | None = None
    for name, folder in package_dirs.items():
        inside = folder == "" or path.startswith(folder + "/")
        if inside and (best is None or len(folder) > len(best[1])):
            best = (name, folder)
    if best is None:
        return None
    name, folder = best
    rest = path[len(folder) + 1 :] if folder else path
    top = rest.split("/")[0]
    if not name and not (ROOT / top / "__init__.py").is_file():
        return None  # a root folder that is no package (examples/, benchmarks/, ...)
    return "/".join(p for p in (name.replace(".", "/"), rest) if p)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    """The wheel ``pip wheel`` builds from a clean copy of this checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    for name in _checkout_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", tmp / "dist", source],
         timeout=BUILD_TIMEOUT, what="wheel build", cwd=tmp, env=_clean_env())  # fmt: skip
    wheels = list((tmp / "dist").glob("tvmext-*.whl"))
    assert len(wheels) == 1, f"expected one tvmext wheel, got {wheels}"
    return wheels[0]


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without what would let Python find the checkout or another
    environment (PYTHON*, VIRTUAL_ENV, this interpreter's bin/ on PATH)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTHON") and k not in {"VIRTUAL_ENV", "CONDA_PREFIX", "PIP_USER"}
    }
    here = os.path.dirname(sys.executable)
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != here]
    env["PATH"] = os.pathsep.join(path)
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


def readme_install(env: pathlib.Path, source: pathlib.Path) -> list[list[str]]:
    """The commands of the README's install block, with its environment folder
    (``~/tvmext-env``) and checkout (``./tvmext``) replaced by ``env`` and ``source``."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Install", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.strip().splitlines():
        words = shlex.split(line.split("#", 1)[0].replace("~/tvmext-env", str(env)))
        commands.append([str(source) if w == "./tvmext" else w for w in words])
    return commands


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh virtual environment outside the checkout, made by the README's install
    commands with the wheel this checkout builds in place of the checkout (``pip
    install`` of a checkout builds that same wheel); removed afterwards (it holds
    about 2.5 GB)."""
    folder = tmp_path_factory.mktemp("venv") / "env"
    (create, install) = readme_install(folder, wheel)
    assert create[:3] == ["python3.11", "-m", "venv"], create
    assert install[:2] == [str(folder / "bin" / "pip"), "install"], install
    create[0] = shutil.which("python3.11") or sys.executable
    _run(create, timeout=300, what="venv create", env=_clean_env())
    _run(install, timeout=INSTALL_TIMEOUT, what="venv install", cwd=folder.parent,
         env=_clean_env())  # fmt: skip
    yield folder
    print("\nwheel test times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in TIMES.items()))
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def workdir(tmp_path) -> pathlib.Path:
    assert ROOT not in tmp_path.resolve().parents, "tmp_path must lie outside the checkout"
    return tmp_path


def _env(venv: pathlib.Path) -> dict[str, str]:
    """A clean environment with the fresh venv first on PATH and a build cache of its own
    (beside the venv: the installed package's tests share what it built)."""
    env = _clean_env(TVMEXT_CACHE_DIR=str(venv.parent / "tvmext-cache"))
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env["PATH"]])
    env["VIRTUAL_ENV"] = str(venv)
    return env


def test_wheel_ships_every_package_file(wheel):
    """Every file of the checkout that lies in a package folder is in the wheel: the
    Python modules (a subpackage missing from ``packages``) and the C++ headers and
    runtime sources the package compiles at run time (package-data)."""
    names = set(zipfile.ZipFile(wheel).namelist())
    package_dirs = _package_dirs()
    expected = {}
    for relative in _checkout_files():
        if relative.suffix in (".py", ".pyi", *NATIVE_SOURCES) or relative.name == "py.typed":
            target = _wheel_path(relative, package_dirs)
            if target is not None:
                expected[relative.as_posix()] = target
    native = [f for f in expected if f.endswith(NATIVE_SOURCES)]
    assert native, f"found no native sources in package folders {package_dirs}"
    assert any(f.endswith("/layer.h") for f in native), native
    missing = {f: w for f, w in expected.items() if w not in names}
    assert not missing, (
        "checkout files missing from the wheel (checkout path -> expected wheel path):\n"
        + "\n".join(f"  {f} -> {w}" for f, w in sorted(missing.items()))
        + "\nwheel holds:\n"
        + "\n".join(f"  {n}" for n in sorted(names))
    )


SCRIPT = textwrap.dedent(
    """
    import json, os, sys, sysconfig

    import numpy as np
    from tvm import te

    import tvmext
    from tvmext.opdef import native_build

    x = (np.arange(24, dtype="float32").reshape(4, 6) - 11.5) / 3

    @tvmext.op("wheeltest.scale2")
    def scale2(x):
        return te.compute(x.shape, lambda *i: x(*i) * 2)

    np.testing.assert_allclose(scale2(x), 2 * x, rtol=1e-6)

    def same_type(x, **_):
        return x

    leaky = tvmext.native_op(
        "wheeltest.leaky_relu", sources=[sys.argv[1]], forward="leaky_fwd",
        backward="leaky_bwd", infer=same_type, attrs={"alpha": 0.1},
    )
    np.testing.assert_allclose(leaky(x, alpha=0.25), np.where(x > 0, x, 0.25 * x), rtol=1e-6)

    print(json.dumps({
        "purelib": sysconfig.get_paths()["purelib"],
        "prefix": sys.prefix,
        "tvmext": tvmext.__file__,
        "include_dir": native_build.INCLUDE_DIR,
        "path": sys.path,
    }))
    """
)


def test_installed_package_runs_ops_and_native_layers(venv, workdir):
    shutil.copy(ROOT / "tests" / "native" / "leaky_relu.cc", workdir / "leaky_relu.cc")
    (workdir / "script.py").write_text(SCRIPT)
    done = _run([venv / "bin" / "python", "script.py", "leaky_relu.cc"], timeout=RUN_TIMEOUT,
                what="custom op + native layer", cwd=workdir, env=_env(venv))  # fmt: skip
    where = json.loads(done.stdout.strip().splitlines()[-1])
    purelib = pathlib.Path(where["purelib"]).resolve()
    assert pathlib.Path(where["prefix"]).resolve() == venv.resolve(), where
    assert purelib.is_relative_to(venv.resolve()), where
    for key in ("tvmext", "include_dir"):
        assert pathlib.Path(where[key]).resolve().is_relative_to(purelib), (key, where)
    assert not any(p and pathlib.Path(p).resolve().is_relative_to(ROOT) for p in where["path"]), (
        f"the checkout is on the fresh venv's sys.path: {where['path']}"
    )


def _matmul_relu(path: pathlib.Path) -> np.ndarray:
    """x[2, 8] -> MatMul(W[8, 4]) -> Relu, saved at ``path``; returns W."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(7).standard_normal((8, 4)).astype("float32")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "matmul_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [numpy_helper.from_array(w, "W")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return w


@pytest.mark.parametrize("target", ["llvm", pytest.param("dnnl, llvm", marks=pytest.mark.onednn)])
def test_installed_cli_compiles_and_runs_onnx(venv, workdir, target):
    w = _matmul_relu(workdir / "model.onnx")
    x = np.random.default_rng(8).standard_normal((2, 8)).astype("float32")
    np.savez(workdir / "in.npz", x=x)
    tool, env = venv / "bin" / "tvmext", _env(venv)
    compile_cmd = [tool, "compile", "model.onnx", "--target", target, "--report", "-o", "model.so",
                   "--emit-app", "app"]  # fmt: skip
    done = _run(compile_cmd, timeout=RUN_TIMEOUT, what=f"cli compile ({target})", cwd=workdir,
                env=env)  # fmt: skip
    assert "wrote model.so" in done.stdout, done.stdout
    if target.startswith("dnnl"):  # the oneDNN runtime sources shipped in the wheel compiled
        assert re.search(r"^dnnl runs [1-9]\d* of", done.stdout, re.M), done.stdout
    _run([tool, "run", "model.so", "--inputs", "in.npz", "--outputs", "out.npz"],
         timeout=RUN_TIMEOUT, what=f"cli run ({target})", cwd=workdir, env=env)  # fmt: skip
    got = np.load(workdir / "out.npz")["output_0"]
    np.testing.assert_allclose(got, np.maximum(x @ w, 0), rtol=1e-5, atol=1e-6)
    # The application, built from the runner sources shipped in the wheel, runs without
    # the environment (no Python, no venv on any path).
    _run([workdir / "app" / "run", "--inputs", "in.npz", "--outputs", "app.npz"],
         timeout=RUN_TIMEOUT, what=f"app run ({target})", cwd=workdir, env={})  # fmt: skip
    np.testing.assert_array_equal(np.load(workdir / "app.npz")["output_0"], got)


TORCH_SCRIPT = textwrap.dedent(
    """
    import json

    import numpy as np
    import torch
    from tvm import te

    import tvmext
    import tvmext.torch


    @tvmext.op("wheeltest.softsign")
    def softsign(x):
        return te.compute(x.shape, lambda *i: x(*i) / (1 + te.abs(x(*i))), name="softsign")


    @softsign.gradient
    def _grad(x, y, dy):
        return te.compute(x.shape, lambda *i: dy(*i) / ((1 + te.abs(x(*i))) * (1 + te.abs(x(*i)))))


    model = torch.nn.Sequential(torch.nn.Linear(8, 4)).eval()
    x = torch.randn(3, 8, requires_grad=True)
    torch.ops.wheeltest.softsign(x).sum().backward()  # eager and autograd
    want = torch.nn.functional.softsign(x).detach()

    class Model(torch.nn.Module):
        def forward(self, x):
            return torch.ops.wheeltest.softsign(x) * 2

    compiled = tvmext.compile(Model(), "llvm", example_inputs=(x.detach(),))
    from_torch_compile = torch.compile(Model(), backend="tvmext", options={"target": "llvm"})
    with torch.no_grad():
        dynamo = from_torch_compile(x.detach())
    print(json.dumps({
        "grad": float((x.grad - 1 / (1 + x.abs()) ** 2).abs().max()),
        "compiled": float(np.abs(compiled(x.detach().numpy()) - 2 * want.numpy()).max()),
        "torch.compile": float((dynamo - 2 * want).abs().max()),
    }))
    """
)


@pytest.mark.full  # mostly pip copying PyTorch; the front door itself is tested in-process
def test_installed_torch_extra(venv, wheel, workdir):
    """``pip install tvmext[torch]``: tvmext ops as PyTorch ops, a module compiled through
    torch.export, and the ``tvmext`` backend of torch.compile found through the entry
    point of the installed wheel."""
    _run([venv / "bin" / "pip", "install", f"{wheel}[torch]"], timeout=INSTALL_TIMEOUT,
         what="torch extra install", cwd=workdir, env=_clean_env())  # fmt: skip
    (workdir / "torch_script.py").write_text(TORCH_SCRIPT)
    done = _run([venv / "bin" / "python", "torch_script.py"], timeout=RUN_TIMEOUT,
                what="PyTorch front door", cwd=workdir, env=_env(venv))  # fmt: skip
    errors = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(e < 1e-5 for e in errors.values()), errors
