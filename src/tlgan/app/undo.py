"""One user's undo stack: a ``Session`` holds the state shown and the states before it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .state import ExplorerState, StateError

MAX_UNDO = 100
MAX_SESSIONS = 200  # sessions whose state a server keeps (tlgan serve --max-sessions); the least recently used go
COALESCE_S = 1.0  # changes of one slider within this many seconds are one undo step (a drag)


@dataclass(frozen=True)
class Session:
    """One user's state and undo stack. Changes return a new ``Session``."""

    state: ExplorerState
    history: tuple[ExplorerState, ...] = ()
    last_key: str | None = None
    last_time: float = 0.0

    def push(self, new: ExplorerState, key: str | None = None, now: float | None = None) -> Session:
        """Make ``new`` current. Repeated changes with the same ``key`` (one slider being dragged) within
        ``COALESCE_S`` seconds are a single undo step."""
        now = time.monotonic() if now is None else now
        if new == self.state:
            return self
        if key is not None and key == self.last_key and now - self.last_time < COALESCE_S and self.history:
            return Session(new, self.history, key, now)
        return Session(new, ((*self.history, self.state))[-MAX_UNDO:], key, now)

    @property
    def can_undo(self) -> bool:
        return bool(self.history)

    def undo(self) -> Session:
        if not self.history:
            raise StateError("nothing to undo")
        return Session(self.history[-1], self.history[:-1], None, 0.0)
