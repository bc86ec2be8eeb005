"""``import tvm`` loads tvmext through the tvm.backends entry point; the switch turns it off."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def _python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


PARSE_PRINTED = """
    import tvm
    from tvm.script import from_source
    text = '''
    @I.ir_module
    class Module:
        @R.function
        def main(x: R.Tensor((2, 4), dtype="float32")) -> R.Tensor((2, 4), dtype="float32"):
            y: R.Tensor((2, 4), dtype="float32") = R.tvmext.tvmext.swish(x, beta=2.0)
            return y
    '''
    mod = from_source(text)
    print(mod["main"].body.blocks[0].bindings[0].value.op.name)
"""


def test_import_tvm_is_enough():
    out = _python(PARSE_PRINTED)
    assert out == "relax.tvmext.tvmext.swish"


def test_autoload_off_then_import_tvmext():
    code = """
        import tvm
        print(tvm.ir.Op.list_op_names().__contains__("relax.tvmext.tvmext.swish"))
        import tvmext
        tvmext.op  # first use loads the ops
        print(tvm.ir.Op.list_op_names().__contains__("relax.tvmext.tvmext.swish"))
    """
    assert _python(code, TVM_DEVICE_BACKEND_AUTOLOAD="0").split() == ["False", "True"]


def test_import_tvmext_first_does_not_recurse():
    code = """
        import tvmext
        import numpy as np
        from tvmext.ops import swish
        print(float(swish(np.zeros(4, "float32")).sum()))
    """
    assert _python(code) == "0.0"


def test_import_tvmext_is_cheap():
    assert _python("import sys, tvmext; print('tvm' in sys.modules)") == "False"
