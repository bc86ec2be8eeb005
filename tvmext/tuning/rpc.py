"""The client side of a TVM RPC tracker: where tuning measures its candidates.

TVM's tracker calls can block forever (``request`` waits for a free server, a frozen
server never answers), so every call here runs under a deadline and fails with an
error that names the tracker and the key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tvmext.errors import CompileError

T = TypeVar("T")

# Registered by ``tvmext rpc-server`` (tvmext.tuning.rpc_server): the cores the server
# may use. A stock TVM server lacks it, and the target then says no core count.
CPU_CORES_FUNC = "tvmext.rpc.cpu_cores"


@dataclass(frozen=True)
class RpcTracker:
    """A tracker, the key its servers registered under, and the deadlines to use."""

    host: str
    port: int
    key: str
    session_timeout: float = 60.0
    connect_timeout: float = 10.0

    def __str__(self) -> str:
        return f"tracker {self.host}:{self.port}, key {self.key!r}"


def parse_tracker(address: str, key: str | None, session_timeout: float = 60.0) -> RpcTracker:
    """An :class:`RpcTracker` from ``HOST:PORT`` and a key; errors say what is missing."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise CompileError(f"RPC tracker {address!r}: expected HOST:PORT, e.g. 127.0.0.1:9190")
    if not key:
        raise CompileError(f"RPC tracker {address!r}: a key (--rpc-key) names its servers")
    return RpcTracker(host, int(port), key, session_timeout)


def with_deadline(seconds: float, what: str, fn: Callable[[], T]) -> T:
    """``fn()``, or an error saying that ``what`` did not finish in ``seconds``."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as err:  # re-raised in the caller's thread
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise CompileError(f"{what}: no answer within {seconds:g} s")
    if errors:
        err = errors[0]
        raise CompileError(f"{what}: {type(err).__name__}: {err}") from err
    return result[0]


def _connect(tracker: RpcTracker) -> Any:
    from tvm import rpc

    return with_deadline(
        tracker.connect_timeout,
        f"connecting to the RPC {tracker}",
        lambda: rpc.connect_tracker(tracker.host, tracker.port),
    )


def server_count(tracker: RpcTracker) -> int:
    """How many servers are registered under the tracker's key."""
    session = _connect(tracker)
    summary = with_deadline(
        tracker.connect_timeout, f"asking the RPC {tracker} for its servers", session.summary
    )
    keys = [item["key"].partition(":")[2] for item in summary.get("server_info", [])]
    return keys.count(tracker.key)


def require_servers(tracker: RpcTracker) -> int:
    """The number of servers under the key; an error when there is none."""
    count = server_count(tracker)
    if count == 0:
        raise CompileError(
            f"no RPC server is registered at the {tracker}: start one with "
            f"'tvmext rpc-server --tracker {tracker.host}:{tracker.port} --key {tracker.key}'"
        )
    return count


def remote_cpu(tracker: RpcTracker) -> dict[str, Any]:
    """LLVM target options for one server's CPU: ``mcpu``, ``mtriple`` and, when the
    server says so, ``num-cores``."""

    def ask() -> dict[str, Any]:
        remote = _connect(tracker).request(
            tracker.key, priority=1, session_timeout=tracker.session_timeout
        )
        target: dict[str, Any] = {
            "mcpu": str(remote.get_function("target.llvm_get_system_cpu")()),
            "mtriple": str(remote.get_function("target.llvm_get_system_triple")()),
        }
        try:
            cores = remote.get_function(CPU_CORES_FUNC)
        except (AttributeError, RuntimeError):
            return target  # a stock TVM server: no core count
        target["num-cores"] = int(cores())
        return target

    what = f"asking a server of the RPC {tracker} for its CPU"
    return with_deadline(tracker.session_timeout, what, ask)
