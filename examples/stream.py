"""The event stream every example generator writes: events in time order, each fed to a replay of
the example's scheme as it is written, so a generator knows the coupons and balances it creates."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from perkflow.engine import Replay, compile
from perkflow.rules import load


class Stream:
    """Events in time order, each fed to a replay of the scheme as it is written."""

    def __init__(self, scheme: Path) -> None:
        loaded = load(scheme)
        assert loaded.scheme is not None and not loaded.errors, loaded.errors
        self.scheme = loaded.scheme
        self.replay = Replay(compile(loaded.scheme), trace=False)
        self.events: list[dict[str, Any]] = []
        self.serial: Counter[str] = Counter()
        self.queue: list[tuple[datetime, int, Callable[..., None], tuple[Any, ...]]] = []
        self.pushed = 0

    def later(self, at: datetime, handler: Callable[..., None], *args: Any) -> None:
        self.pushed += 1
        heapq.heappush(self.queue, (at, self.pushed, handler, args))

    def run(self, until: datetime) -> None:
        """Run the handlers in time order up to `until`. A handler that is a generator yields how
        long to wait before it goes on, so its later events keep their place in time."""
        while self.queue and self.queue[0][0] <= until:
            at, _, handler, args = heapq.heappop(self.queue)
            steps = handler(at, *args)
            if isinstance(steps, Iterator):
                self.resume(at, steps)

    def resume(self, at: datetime, steps: Iterator[timedelta]) -> None:
        wait = next(steps, None)
        if wait is not None:
            self.later(at + wait, self.resume, steps)

    def emit(
        self,
        kind: str,
        member: str,
        at: datetime,
        system: str,
        /,  # so that an attribute may be called `kind` (a tier override's)
        *,
        store: str = "",
        channel: str = "",
        event_id: str | None = None,
        **attributes: Any,
    ) -> dict[str, Any]:
        if event_id is None:
            self.serial[system] += 1
            event_id = f"{system}-{self.serial[system]:06d}"
        event: dict[str, Any] = {
            "id": event_id,
            "type": kind,
            "member_id": member,
            "occurred_at": at.isoformat(),
        }
        if store:
            event["store"] = store
        event["channel"] = channel or system
        if attributes:
            event["attributes"] = attributes
        self.replay.feed(event)
        self.events.append(event)
        return event
