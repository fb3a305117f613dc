"""One way to check a state transition against a table, for every service's state machines."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TypeVar

S = TypeVar("S")


def check_transition(table: Mapping[S, Collection[S]], current: S, target: S, *,
                     error: Callable[[str], Exception], noun: str) -> S:
    """Return ``target`` if the table allows it from ``current``; else raise ``error`` saying why."""
    if target not in table.get(current, ()):
        raise error(f"A {noun} cannot go from {current} to {target}.")
    return target
