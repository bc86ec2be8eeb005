"""A sample of the conformance cases that runs every line of tvmext the whole record runs.

The test suite's default tier checks this sample; the full tier checks every recorded
case. A case is worth its compile time when it reaches code no other case reaches, so
the sample is a greedy cover of the Python lines (of ``tvmext``, ``tvmext.target`` and
``tvmext.passes``) each case executes, plus a few cases of every operator family, so
that each family is checked end to end. What the sample does not keep is variety below
tvmext's code: two cases that run the same lines (a Cast between two other dtypes) but
reach different TVM code generation. Those stay in the full tier.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from types import FrameType
from typing import Any


def _package_roots() -> tuple[str, ...]:
    import tvmext
    import tvmext.passes
    import tvmext.target

    return tuple(
        os.path.join(os.path.dirname(os.path.abspath(path)), "")
        for path in (tvmext.__file__, tvmext.target.__file__, tvmext.passes.__file__)
        if path
    )


@contextlib.contextmanager
def lines_run() -> Iterator[set[str]]:
    """Collect the ``file:line`` of every tvmext line the body executes (this thread)."""
    roots = _package_roots()
    seen: set[str] = set()

    def in_frame(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            seen.add(f"{frame.f_code.co_filename}:{frame.f_lineno}")
        return in_frame

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        return in_frame if frame.f_code.co_filename.startswith(roots) else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield seen
    finally:
        sys.settrace(previous)


def spread(names: Sequence[str], count: int) -> list[str]:
    """``count`` of ``names`` (sorted), evenly spaced, first and last included."""
    names = sorted(names)
    if len(names) <= count:
        return names
    if count == 1:
        return [names[0]]
    return [names[round(i * (len(names) - 1) / (count - 1))] for i in range(count)]


def covering_sample(
    lines: Mapping[str, set[str]], families: Mapping[str, str], per_family: int
) -> list[str]:
    """The cases to keep: ``per_family`` of each family (evenly spaced), then, greedily,
    the case that runs the most lines not yet run, until every line some case runs is."""
    by_family: dict[str, list[str]] = {}
    for name in lines:
        by_family.setdefault(families[name], []).append(name)
    chosen = {n for members in by_family.values() for n in spread(members, per_family)}
    covered = set().union(*(lines[n] for n in chosen))
    missing = set().union(*lines.values()) - covered
    while missing:
        best = max(sorted(set(lines) - chosen), key=lambda n: len(lines[n] & missing))
        chosen.add(best)
        missing -= lines[best]
    return sorted(chosen)
