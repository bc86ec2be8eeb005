"""Tuning records: a MetaSchedule database in one JSON file, written by ``tvmext tune``
(:mod:`tvmext.tuning`) and read by the schedule stage.

The file holds MetaSchedule's own JSON database — one entry per workload (a PrimFunc
as an IRModule), one per measured schedule (a trace, its run times, the target) —
plus the target it was tuned for. A workload is the unscheduled PrimFunc as
:func:`workload_module` normalizes it, so records apply to any model with the same
PrimFunc, and a function without a record keeps tvmext's default schedule.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import tvm
import tvm.s_tir.meta_schedule as ms
import tvm_ffi
from tvm import tirx

from tvmext.atomic_file import atomic_output
from tvmext.errors import CompileError

FORMAT = "tvmext-metaschedule"
FORMAT_VERSION = 2
WORKLOAD_FILE = "database_workload.json"
RECORD_FILE = "database_tuning_record.json"


def workload_module(func: tirx.PrimFunc) -> tvm.IRModule:
    """The IRModule MetaSchedule tunes for ``func``, and looks it up by."""
    return tvm.IRModule({"main": func.with_attr("global_symbol", "main")})


def workload_key(mod: tvm.IRModule) -> str:
    """A workload module's structural hash, as hex: the key of its baseline time."""
    return f"{tvm_ffi.structural_hash(mod) & 0xFFFFFFFFFFFFFFFF:016x}"


def _read_lines(path: str) -> list[Any]:
    """The entries of a database file; a last line cut short (the tuning process was
    killed while appending it) is left out."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    entries = []
    for i, line in enumerate(lines):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            if i != len(lines) - 1:
                raise
    return entries


def _write_lines(path: str, entries: list[Any]) -> None:
    with open(path, "w") as f:
        for entry in entries:
            f.write(json.dumps(entry, separators=(",", ":")) + "\n")


@dataclass
class TuningRecords:
    """A MetaSchedule database for one target, kept as MetaSchedule's JSON entries,
    and the time of each workload's default schedule (``baselines``, by
    :func:`workload_key`), which a record must beat to be used."""

    target: str
    workloads: list[Any] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)
    baselines: dict[str, float] = field(default_factory=dict)
    _database: Any = field(default=None, repr=False, compare=False)

    def write_database(self, folder: str) -> None:
        """Write the entries as a MetaSchedule ``JSONDatabase`` in ``folder``."""
        _write_lines(os.path.join(folder, WORKLOAD_FILE), self.workloads)
        _write_lines(os.path.join(folder, RECORD_FILE), self.records)

    @classmethod
    def from_database(cls, folder: str, target: str) -> TuningRecords:
        """The entries of the ``JSONDatabase`` in ``folder`` (as tuning left it)."""
        return cls(
            target,
            _read_lines(os.path.join(folder, WORKLOAD_FILE)),
            _read_lines(os.path.join(folder, RECORD_FILE)),
        )

    def check_target(self, target: tvm.target.Target, path: str) -> None:
        """An error naming ``path`` unless the records were tuned for ``target``'s kind
        (a CPU trace does not replay on a GPU function)."""
        kind = json.loads(self.target).get("kind")
        if kind != target.kind.name:
            raise CompileError(
                f"tuning records {path!r} were tuned for a {kind!r} target; this compile "
                f"is for {target.kind.name!r}"
            )

    def database(self) -> ms.database.Database:
        """The entries as a MetaSchedule database (loaded once)."""
        if self._database is None:
            with tempfile.TemporaryDirectory(prefix="tvmext-records-") as folder:
                self.write_database(folder)
                # JSONDatabase reads both files when it is made; a copy in memory
                # keeps lookups from writing to the temporary folder.
                json_db = ms.database.JSONDatabase(
                    os.path.join(folder, WORKLOAD_FILE), os.path.join(folder, RECORD_FILE)
                )
                memory = ms.database.MemoryDatabase()
                for record in json_db.get_all_tuning_records():
                    memory.commit_workload(record.workload.mod)
                    memory.commit_tuning_record(record)
                self._database = memory
        return self._database

    def lookup(self, func: tirx.PrimFunc, target: tvm.target.Target) -> tirx.PrimFunc | None:
        """``func`` with the fastest recorded schedule, if it has one that is faster
        than the default schedule."""
        if not self.records:
            return None
        workload = workload_module(func)
        record = self.database().query_tuning_record(workload, target, "main")
        if record is None:
            return None
        seconds = [float(s) for s in record.run_secs]
        baseline = self.baselines.get(workload_key(workload))
        if baseline is not None and sum(seconds) / len(seconds) >= baseline:
            return None  # tuning did not beat the default schedule
        scheduled = self.database().query_ir_module(workload, target, "main")
        if scheduled is None:
            return None
        # The function keeps its own attributes (and no "main" symbol of its own).
        new = scheduled["main"].without_attr("global_symbol")
        for key, value in (func.attrs or {}).items():
            new = new.with_attr(key, value)
        return new

    def save(self, path: str) -> None:
        """Write the records as one JSON file, atomically."""
        data = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "target": self.target,
            "workloads": self.workloads,
            "records": self.records,
            "baselines": self.baselines,
        }
        with atomic_output(path) as tmp, open(tmp, "w") as f:
            json.dump(data, f, separators=(",", ":"))

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
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CompileError(
                f"tuning records {path!r} are not tvmext records (expected format {FORMAT!r}, "
                "as written by 'tvmext tune')"
            )
        if data.get("version") != FORMAT_VERSION:
            raise CompileError(
                f"tuning records {path!r} are version {data.get('version')!r}; this tvmext "
                f"reads version {FORMAT_VERSION}: tune again"
            )
        return cls(
            str(data["target"]),
            list(data["workloads"]),
            list(data["records"]),
            dict(data.get("baselines", {})),
        )
