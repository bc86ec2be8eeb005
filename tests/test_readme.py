"""Every code block of the README runs as written.

Python blocks run in order in one namespace, from a folder outside the checkout that
holds the checkout's ``examples/`` (the README's paths are relative to the checkout);
the command-line block runs there too, with this environment's ``tvmext``. The install
block is run by ``tests/test_wheel.py``; of the two commands, ``bash dev.sh test`` is the
command running this suite, and ``bash dev.sh demo`` is checked to run the README's
command-line block.
"""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.native  # the README's commands write .so files

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", README, flags=re.M | re.S)


def _blocks(lang: str) -> list[str]:
    return [code for kind, code in BLOCKS if kind == lang]


def _commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined."""
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]


@pytest.fixture
def checkout_like(tmp_path, monkeypatch) -> pathlib.Path:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_block_is_covered():
    kinds = sorted({kind for kind, _ in BLOCKS})
    assert kinds == ["bash", "python"], kinds
    assert len(_blocks("python")) == 4 and len(_blocks("bash")) == 3


def test_python_blocks_run(checkout_like, capsys):
    namespace: dict[str, object] = {}
    for code in _blocks("python"):
        exec(compile(code, str(ROOT / "README.md"), "exec"), namespace)
    assert namespace["scaled_tanh"].name == "mylib.scaled_tanh"
    printed = capsys.readouterr().out
    assert "1.52318" in printed  # 2 * tanh(1)
    assert namespace["y"].shape == (32, 10)
    assert (checkout_like / "acme_mlp.so").is_file()
    with namespace["torch"].no_grad():  # type: ignore[attr-defined]
        want = namespace["model"](namespace["x"]).numpy()  # type: ignore[operator]
    np.testing.assert_allclose(namespace["out"], want, rtol=1e-5, atol=1e-6)
    assert "tensor([1.5232, 1.5232])" in printed  # torch.ops.mylib.scaled_tanh
    layer_norm = namespace["layer_norm"]
    x = np.random.default_rng(0).standard_normal((4, 8)).astype("float32")
    gamma, beta = np.ones(8, "float32"), np.zeros(8, "float32")
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(layer_norm(x, gamma, beta), expected, rtol=1e-4, atol=1e-5)


def test_command_line_block_runs(checkout_like):
    (cli_block,) = [b for b in _blocks("bash") if b.startswith("tvmext compile")]
    env = {
        **os.environ,
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]),
    }
    outputs = []
    for command in _commands(cli_block):
        done = subprocess.run(
            shlex.split(command), capture_output=True, text=True, env=env, timeout=600,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        outputs.append(done.stdout)
    assert "wrote acme_mlp.so" in outputs[0]
    assert "top-3" in outputs[1] and "ms" in outputs[1]
    assert "acme.shifted_softplus" in outputs[2] and "com.acme::ShiftedSoftplus" in outputs[2]


def test_the_two_commands_are_dev_sh_demo_and_test():
    (block,) = [b for b in _blocks("bash") if "dev.sh" in b]
    assert _commands(block) == ["bash dev.sh demo", "bash dev.sh test"]
    (cli_block,) = [b for b in _blocks("bash") if b.startswith("tvmext compile")]
    compile_args = shlex.split(_commands(cli_block)[0])[2:]
    dev_sh = (ROOT / "dev.sh").read_text()
    demo = " ".join(_commands(dev_sh.split('if [ "$job" = demo ]', 1)[1].split("fi\n", 1)[0]))
    # dev.sh demo compiles the same model with the same plugin and shapes.
    for arg in compile_args[:5]:
        assert arg in demo.replace('"', ""), (arg, demo)


def test_install_block_is_what_the_wheel_test_runs():
    from test_wheel import readme_install

    create, install = readme_install(pathlib.Path("/env"), pathlib.Path("/src"))
    assert create == ["python3.11", "-m", "venv", "/env"]
    assert install == ["/env/bin/pip", "install", "/src"]
