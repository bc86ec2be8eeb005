"""A TVM RPC tracker and ``tvmext rpc-server`` processes on loopback, for the RPC
tests and the tuning benchmark."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

from tvmext.tuning.rpc import RpcTracker, server_count

BIN = pathlib.Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on loopback that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait(condition, seconds: float, what: str) -> None:
    """Poll ``condition()`` until it holds; fail saying ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds} s")
        time.sleep(0.2)


class Pool:
    """A tracker and ``servers`` ``tvmext rpc-server`` processes registered under
    ``key``, each pinned to one core where there are several; logs in ``folder``."""

    def __init__(self, folder: pathlib.Path, servers: int, key: str) -> None:
        self.folder = folder
        port = free_port()
        self.tracker = RpcTracker("127.0.0.1", port, key, session_timeout=20)
        self.processes: list[subprocess.Popen] = []
        try:
            tracker = (
                f"-m tvm.exec.rpc_tracker --host 127.0.0.1 --port {port} --port-end {port + 1}"
            )
            self.tracker_process = self._start("tracker", [sys.executable, *tracker.split()])
            wait(lambda: self._tracker_up(), 30, "the tracker did not start")
            cores = sorted(os.sched_getaffinity(0))
            self.servers = [
                self._start(
                    f"server{i}",
                    [
                        str(BIN / "tvmext"),
                        *f"rpc-server --tracker 127.0.0.1:{port}".split(),
                        *f"--key {key} --port {free_port()}".split(),
                    ],
                    core=cores[i % len(cores)] if len(cores) > 1 else None,
                )
                for i in range(servers)
            ]
            wait(lambda: server_count(self.tracker) == servers, 60, "the servers did not register")
        except BaseException:
            self.close()  # nothing left running when the pool does not come up
            raise

    def _start(self, name: str, command: list[str], core: int | None = None):
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 (open while it runs)
        pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
        # Its own process group: TVM's tracker runs in a PopenWorker child of the
        # process started here, which close() must take down too.
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=pin, start_new_session=True)  # fmt: skip
        self.processes.append(process)
        return process

    def _tracker_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.tracker.port), timeout=1):
                return True
        except OSError:
            return False

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def close(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
