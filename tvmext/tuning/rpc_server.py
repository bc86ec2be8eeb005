"""``tvmext rpc-server``: a TVM RPC server for tuning that outlives crashing candidates.

Each session runs in its own process (TVM's server forks one per client). When a
candidate kills that process, TVM's listen loop raises and the stock server stops
serving while its process stays alive; here the loop is entered again, which
registers with the tracker anew, and the log says what happened. SIGTERM and SIGINT
stop the server and its session processes. The server also answers
:data:`~tvmext.tuning.rpc.CPU_CORES_FUNC`, so tuning knows how many cores its
candidates may use.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import signal
import socket
from types import FrameType

from tvmext.errors import CompileError
from tvmext.tuning.rpc import CPU_CORES_FUNC, RpcTracker

# TVM's server logger: its messages and ours go to one log.
log = logging.getLogger("RPCServer")
PORTS_TO_TRY = 100


class _Stop(Exception):
    """Raised in the server's main thread by SIGTERM or SIGINT."""


def _bind(host: str, port: int) -> tuple[socket.socket, int]:
    """A listening socket on the first free port from ``port`` on."""
    for candidate in range(port, port + PORTS_TO_TRY):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as err:
            sock.close()
            if err.errno == errno.EADDRINUSE:
                continue
            raise CompileError(f"rpc-server: cannot listen on {host}:{candidate}: {err}") from err
        sock.listen(1)
        return sock, candidate
    raise CompileError(f"rpc-server: no free port on {host} in [{port}, {port + PORTS_TO_TRY})")


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def _default_signals_in_sessions() -> None:
    # A session process must die on the SIGTERM TVM sends it at its timeout, not run
    # the server's handler.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def serve(tracker: RpcTracker, host: str = "127.0.0.1", port: int = 9090) -> None:
    """Serve tuning sessions for ``tracker``'s key on ``host`` until SIGTERM/SIGINT."""
    import tvm_ffi
    from tvm.rpc import server as tvm_server

    tvm_ffi.register_global_func(
        CPU_CORES_FUNC, lambda: len(os.sched_getaffinity(0)), override=True
    )
    sock, bound = _bind(host, port)
    os.register_at_fork(after_in_child=_default_signals_in_sessions)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("listening on %s:%d for key %r of %s", host, bound, tracker.key, tracker)
    cwd = os.getcwd()
    try:
        while True:
            try:
                tvm_server._listen_loop(  # TVM 0.27 (pinned): its private loop
                    sock, bound, tracker.key, (tracker.host, tracker.port), None, None
                )
            except RuntimeError as err:
                if "Failed to connect" in str(err):  # TVM's retries to the tracker ran out
                    raise CompileError(f"rpc-server: cannot reach the {tracker}: {err}") from err
                if "exited unsuccessfully" not in str(err):
                    raise CompileError(f"rpc-server: {err}") from err
                os.chdir(cwd)  # TVM's loop left the session's work folder
                log.warning("%s: a candidate ended its session; serving on", err)
    except _Stop as stop:
        log.info("stopping on %s", stop)
    finally:
        for child in multiprocessing.active_children():
            child.terminate()
            child.join(5)
        sock.close()
