"""Tuning records: the best tile shapes per workload, keyed by the unscheduled
PrimFunc's structural hash, saved as JSON; read by the schedule stage, written by
:mod:`tvmext.lowering.tuning`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import tvm_ffi
from tvm import tirx

from tvmext.atomic_file import atomic_output
from tvmext.errors import CompileError
from tvmext.lowering.schedules.cpu_matmul import MatmulTiles

FORMAT_VERSION = 1


def workload_key(func: tirx.PrimFunc) -> str:
    """A stable key for an unscheduled PrimFunc (structural hash, hex)."""
    plain = func.without_attr("global_symbol") if func.attrs is not None else func
    return f"{tvm_ffi.structural_hash(plain) & 0xFFFFFFFFFFFFFFFF:016x}"


@dataclass
class TuningRecords:
    """Best tile shapes per workload, for one target."""

    target: str
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def lookup(self, func: tirx.PrimFunc) -> MatmulTiles | None:
        """The tuned tiles for ``func``, if it was tuned."""
        entry = self.entries.get(workload_key(func))
        return MatmulTiles(**entry["tiles"]) if entry else None

    def save(self, path: str) -> None:
        """Write the records as JSON, atomically."""
        data = {"format": FORMAT_VERSION, "target": self.target, "workloads": self.entries}
        with atomic_output(path) as tmp, open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)

    @classmethod
    def load(cls, path: str) -> TuningRecords:
        """Read records written by :meth:`save`; errors name the file."""
        try:
            with open(path) as f:
                data = json.load(f)
        except OSError as err:
            raise CompileError(f"tuning records {path!r} cannot be read: {err}") from err
        except json.JSONDecodeError as err:
            raise CompileError(f"tuning records {path!r} are not JSON: {err}") from err
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            raise CompileError(
                f"tuning records {path!r} are not tvmext records (format {FORMAT_VERSION})"
            )
        return cls(str(data["target"]), dict(data["workloads"]))
