"""A tiny name -> factory registry shared by generators, extractors and direction finders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import TLGANError

T = TypeVar("T")


class UnknownNameError(TLGANError, KeyError):
    """A name that no plugin registered; the message lists the known names."""

    def __str__(self) -> str:  # KeyError quotes its argument; show the sentence instead
        return str(self.args[0])


class Registry(Generic[T]):
    """Named factories for one kind of plugin (e.g. generators).

    Plugins register with the decorator ``@REGISTRY.register("name")``; users
    build one with ``REGISTRY.create("name", **options)``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, help: str = "") -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise TLGANError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            self._help[name] = help or (factory.__doc__ or "").strip().split("\n")[0]
            return factory

        return decorate

    def unregister(self, name: str) -> None:
        """Forget ``name`` (for plugins and tests that add one for a while); an unknown name is ignored."""
        self._factories.pop(name, None)
        self._help.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def describe(self, name: str) -> str:
        self._check(name)
        return self._help[name]

    def _check(self, name: str) -> None:
        if name not in self._factories:
            known = ", ".join(self.names()) or "none"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}")

    def factory(self, name: str) -> Callable[..., T]:
        """What ``create(name)`` calls (a class or a function), to read what it declares without building it."""
        self._check(name)
        return self._factories[name]

    def create(self, name: str, **options: object) -> T:
        self._check(name)
        return self._factories[name](**options)

    def __contains__(self, name: object) -> bool:
        return name in self._factories
