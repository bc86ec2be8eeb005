"""Plugins by file, module name and installed entry point; failures name the plugin."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import tvmext
from tvmext.opdef.declaration import OPS
from tvmext.plugins import load_plugin

PLUGINS = pathlib.Path(__file__).parent / "plugins"


def test_file_plugin_registers_with_its_origin():
    load_plugin(str(PLUGINS / "good_plugin.py"))
    assert OPS.entry("plugintest.triple").origin.startswith(str(PLUGINS / "good_plugin.py"))


def test_a_file_loads_once_whatever_path_names_it(tmp_path, monkeypatch):
    """A relative path, an absolute one and a symbolic link name the same plugin: it
    is imported once (a second import would register its ops twice)."""
    (tmp_path / "once_plugin.py").write_text(
        "import tvmext\nfrom tvm import te\n"
        "@tvmext.op('onceplugin.ident')\n"
        "def ident(x):\n    return te.compute(x.shape, lambda *i: x[i])\n"
    )
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "once_plugin.py").symlink_to(tmp_path / "once_plugin.py")
    monkeypatch.chdir(tmp_path)
    first = load_plugin("once_plugin.py")
    assert load_plugin(str(tmp_path / "once_plugin.py")) is first
    assert load_plugin("link/once_plugin.py") is first
    assert "onceplugin.ident" in OPS


def test_module_plugin(tmp_path, monkeypatch):
    (tmp_path / "my_module_plugin.py").write_text(
        "import tvmext\nfrom tvm import te\n"
        "@tvmext.op('modplugin.ident', replace=True)\n"
        "def ident(x):\n    return te.compute(x.shape, lambda *i: x[i])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    tvmext.load_plugins(["my_module_plugin"])
    assert "modplugin.ident" in OPS


def test_failures_name_the_plugin_and_the_reason():
    with pytest.raises(tvmext.PluginError, match=r"plugin 'no_such_mod_xyz' not found"):
        load_plugin("no_such_mod_xyz")
    with pytest.raises(tvmext.PluginError, match=r"plugin file '/nonexistent/p.py' does not exist"):
        load_plugin("/nonexistent/p.py")
    with pytest.raises(
        tvmext.PluginError, match=r"broken_plugin.py' failed to load: RuntimeError: the vendor"
    ):
        load_plugin(str(PLUGINS / "broken_plugin.py"))


def test_installed_entry_point_plugins_load_automatically(tmp_path):
    dist = tmp_path / "acme_tvm_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-tvm-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tvmext.plugins]\nacme = acme_ep_plugin\n")
    (tmp_path / "acme_ep_plugin.py").write_text(
        "import tvmext\nfrom tvm import te\n"
        "@tvmext.op('acme_ep.ident')\n"
        "def ident(x):\n    return te.compute(x.shape, lambda *i: x[i])\n"
    )
    code = textwrap.dedent(
        """
        import numpy as np, tvmext
        from tvmext.plugins import installed_plugins
        print(installed_plugins())
        tvmext.load_plugins()
        from tvmext.opdef.declaration import OPS
        print("acme_ep.ident" in OPS)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.split("\n")
    assert out[:2] == ["['acme']", "True"]


def test_installed_targets_load_by_name(tmp_path):
    """A package declares a target as a ``tvmext.targets`` entry point; a target string
    naming it loads it (tvmext's own oneDNN target is found the same way)."""
    dist = tmp_path / "acme_npu-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-npu\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[tvmext.targets]\nacme_npu = acme_npu_target:TARGET\nbroken = acme_npu_target:OTHER\n"
    )
    (tmp_path / "acme_npu_target.py").write_text(
        textwrap.dedent(
            """
            from tvmext.target.external import ExternalTarget, Partitioned
            from tvmext.target.report import PartitionReport

            class AcmeNpu(ExternalTarget):
                name = "acme_npu"

                def partition(self, mod, host):  # runs nothing: every op stays on TVM
                    print("partitioned by acme_npu")
                    return Partitioned(mod, PartitionReport(self.name, ()))

            TARGET = AcmeNpu()
            OTHER = object()
            """
        )
    )
    code = textwrap.dedent(
        """
        import numpy as np, tvmext
        from onnx_models import mlp
        module = tvmext.compile(mlp(batch=2), "acme_npu, llvm")
        print(module.run(np.ones((2, 32), np.float32))[0].shape)
        for target in ("broken, llvm", "npu, llvm"):
            try:
                tvmext.compile(mlp(batch=2), target)
            except tvmext.CompileError as err:
                print(err)
        """
    )
    tests = str(pathlib.Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), tests])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.split("\n")
    assert out[:2] == ["partitioned by acme_npu", "(2, 10)"], out
    assert out[2] == (
        "entry point broken = 'acme_npu_target:OTHER' of group 'tvmext.targets' is not an "
        "ExternalTarget named 'broken'"
    )
    assert out[3].startswith("unknown external target 'npu' in the target string; known: ")
    assert "acme_npu, broken, dnnl" in out[3]
