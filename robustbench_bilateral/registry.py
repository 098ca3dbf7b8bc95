"""One registry type for every kind of named thing: kernels, threats, corruptions, data sources, models, presets.

Each kind's registry is filled in one visible place (a package's ``__init__`` or ``threats.py``),
as timm's ``models/__init__.py`` is; users add entries with ``register`` (or the decorator form).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from robustbench_bilateral.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one kind by name, in registration order.

    ``kind`` names the kind in messages ("threat", "attention kernel", ...); ``listing`` is the
    command that lists the entries, e.g. ``bilat-eval list attacks``.
    """

    def __init__(self, kind: str, listing: str = "") -> None:
        self.kind = kind
        self.listing = listing
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` as ``name``; a name taken by another entry raises ``ValueError``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if self._entries.get(name, entry) is not entry:
            raise ValueError(f"{self.kind} name {name!r} is taken by {self._entries[name]!r}")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@registry.decorator(name)``: register the decorated object as ``name``."""
        return lambda entry: self.register(name, entry)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a no-op if absent), e.g. after a test registered a throwaway entry."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        """The entry ``name``; an unknown name is an ``InputError`` listing the valid ones."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            hint = f" (see `{self.listing}`)" if self.listing else ""
            raise InputError(f"unknown {self.kind} {name!r}: choose one of {', '.join(self._entries)}{hint}") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
