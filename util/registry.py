"""Explicit name -> object registries.

Every user-facing name (generators, discriminators, models, dataset modes, GAN losses, schedulers, ...)
lives in one `Registry`. The registry is the single source of truth: argparse takes its `choices` from
`names()`, factories look entries up with `get()`, and tests parametrize over it. An unknown name raises
`KeyError` listing the valid ones instead of the reference's `print` + `exit(0)`.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Generic, Iterator, List, Mapping, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of objects, each with optional metadata (e.g. a generator's size divisor)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: Dict[str, T] = {}
        self._meta: Dict[str, Dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: `@REG.register("name", key=value)` adds the decorated object under `name`."""

        def deco(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return deco

    def add(self, name: str, obj: T, **meta: Any) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj
        self._meta[name] = dict(meta)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}") from None

    def meta(self, name: str) -> Mapping[str, Any]:
        self.get(name)  # raises the helpful KeyError for unknown names
        return self._meta[name]

    def names(self) -> List[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"

