"""tvmext.runtime.tvm_log: TVM's scope warnings are dropped, every other line is kept."""

from __future__ import annotations

import os

from tvmext.runtime.tvm_log import filtered_tvm_log


def test_only_the_scope_warnings_are_dropped(capfd):
    with filtered_tvm_log():
        os.write(
            2, b"[12:00:00] /project/src/runtime/vm/executable.cc:276: Warning: Scope Saving:\n"
        )
        os.write(
            2, b"[12:00:00] /project/src/runtime/vm/executable.cc:340: Warning: Scope Loaded:\n"
        )
        os.write(2, b"a real warning\n")
    err = capfd.readouterr().err
    assert err == "a real warning\n"


def test_lines_are_passed_on_when_the_block_fails(capfd):
    try:
        with filtered_tvm_log():
            os.write(2, b"before the error\n")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert capfd.readouterr().err == "before the error\n"
