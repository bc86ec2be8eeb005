"""The one registry class: validated keys, loud duplicates and helpful misses.

Ops, their schedules, ONNX mappings, passes and external targets are each kept in a
:class:`Registry`; a test may swap one for a fresh instance.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from tvmext.errors import OpDefinitionError

T = TypeVar("T")

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def caller_location(depth: int = 2) -> str:
    """Return ``file:line`` of the frame ``depth`` levels above the caller."""
    frame = sys._getframe(depth)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered value with the place that defined it."""

    key: str
    value: T
    origin: str


class Registry(Generic[T]):
    """Map dotted keys (``"ns.name"``) to values, remembering who registered each.

    Registering a key twice is an error naming the first definition, unless
    ``replace=True`` (notebooks re-run cells). Looking up an unknown key lists
    the known ones.
    """

    def __init__(self, kind: str, key_pattern: re.Pattern[str] = _KEY) -> None:
        self.kind = kind
        self._pattern = key_pattern
        self._entries: dict[str, Entry[T]] = {}
        self._listeners: list[Callable[[Entry[T]], None]] = []

    def check_free(self, key: str, *, replace: bool = False) -> None:
        """Raise unless ``key`` is valid and free (or ``replace`` is set)."""
        if not isinstance(key, str) or not self._pattern.match(key):
            expected = (
                "dotted identifiers such as 'mylib.my_op'"
                if self._pattern is _KEY
                else f"a name matching {self._pattern.pattern!r}"
            )
            raise OpDefinitionError(f"{self.kind} name {key!r} is invalid: expected {expected}")
        first = self._entries.get(key)
        if first is not None and not replace:
            raise OpDefinitionError(
                f"{self.kind} {key!r} is already registered (first defined at "
                f"{first.origin}); pass replace=True to redefine it"
            )

    def add(self, key: str, value: T, origin: str, *, replace: bool = False) -> Entry[T]:
        """Register ``value`` under ``key``; ``origin`` says where it was defined."""
        self.check_free(key, replace=replace)
        entry = Entry(key, value, origin)
        self._entries[key] = entry
        for listener in self._listeners:
            listener(entry)
        return entry

    def subscribe(self, listener: Callable[[Entry[T]], None]) -> None:
        """Call ``listener(entry)`` for every entry registered from now on (a
        redefinition included)."""
        self._listeners.append(listener)

    def get(self, key: str) -> T:
        """Return the value for ``key`` or raise ``KeyError`` listing known keys."""
        entry = self._entries.get(key)
        if entry is None:
            known = ", ".join(sorted(self._entries)) or "none"
            raise KeyError(f"unknown {self.kind} {key!r}; registered: {known}")
        return entry.value

    def find(self, key: str) -> T | None:
        """The value for ``key``, or ``None``."""
        entry = self._entries.get(key)
        return None if entry is None else entry.value

    def entry(self, key: str) -> Entry[T]:
        """Return the full entry (value and origin) for ``key``."""
        self.get(key)
        return self._entries[key]

    def remove(self, key: str) -> None:
        """Forget ``key`` (``KeyError`` listing the known keys if it is not registered)."""
        self.get(key)
        del self._entries[key]

    def keys(self) -> list[str]:
        """The registered keys, in registration order."""
        return list(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)
