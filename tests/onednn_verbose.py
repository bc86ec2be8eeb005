"""oneDNN's verbose log (``ONEDNN_VERBOSE=1``), as the tests read it."""

from __future__ import annotations


def executions(log: str) -> list[tuple[str, str]]:
    """(primitive kind, implementation) of each execution in ``log``, in the formats of
    oneDNN 3.2 ("onednn_verbose,exec,cpu,...") and 3.13 ("...,primitive,exec,cpu,...")."""
    found = []
    for line in log.splitlines():
        if ",exec,cpu," in line:
            fields = line.split(",")
            at = fields.index("exec")
            found.append((fields[at + 2], fields[at + 3]))
    return found
