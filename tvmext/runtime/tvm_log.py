"""Keep TVM's own log lines that say nothing to a user out of tvmext's output.

TVM's VM executable logs ``Warning: Scope Saving:`` / ``Scope Loaded:`` once per
function scope every time an artifact is written or read; compiling logs ``Fast mode
segfaults when there are out-of-bounds indices`` for every gather TOPI builds (tvmext
checks the indices of the gathers it imports) and ``Unknown pragma pragma_scope`` for
kernels its schedules annotate. TVM's C++ logger writes
straight to file descriptor 2, beyond Python's ``sys.stderr``, so
:func:`filtered_tvm_log` points descriptor 2 at a temporary file for the duration of
the call and then passes on every line except those.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

_NOISE = re.compile(
    r"executable\.cc:\d+: Warning: Scope (Saving|Loaded):\s*$"
    r"|transform\.h:\d+: Warning: Fast mode segfaults when there are out-of-bounds indices"
    r"|codegen_cpu\.cc:\d+: Warning: Unknown pragma pragma_scope\s*$"
)


@contextmanager
def filtered_tvm_log() -> Iterator[None]:
    """Drop TVM's warnings above written to stderr inside the block; every other line
    written there is passed on, in order, when the block ends."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not _NOISE.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
