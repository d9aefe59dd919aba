"""The scheduler and the webhook worker in the background of `perkflow serve`: one daemon thread
that runs `Scheduler.tick` every `tick_seconds` and `Webhooks.run` every `deliver_seconds` (0 turns
either off). A failed run is logged and tried again at the next turn; several servers may run it
at once (both are safe to run concurrently)."""

from __future__ import annotations

import logging
import threading
import time

from .core import Service

log = logging.getLogger("perkflow.background")


class Background:
    def __init__(self, service: Service, *, tick_seconds: int, deliver_seconds: int) -> None:
        self.service, self.tick_seconds, self.deliver_seconds = service, tick_seconds, deliver_seconds
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="perkflow-background", daemon=True)

    def start(self) -> Background:
        if self.tick_seconds or self.deliver_seconds:
            self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _loop(self) -> None:
        next_tick = next_delivery = time.monotonic()
        while not self.stopping.is_set():
            now = time.monotonic()
            if self.tick_seconds and now >= next_tick:
                self._safely("scheduler", lambda: log.info("tick %s", self.service.scheduler.tick().to_dict()))
                next_tick = now + self.tick_seconds
            if self.deliver_seconds and now >= next_delivery:
                self._safely("notifications", lambda: log.info("notify %s", self.service.notifications.run()))
                self._safely("webhooks", lambda: log.info("deliver %s", self.service.webhooks.run().to_dict()))
                next_delivery = now + self.deliver_seconds
            waits = [t for t, on in ((next_tick, self.tick_seconds), (next_delivery, self.deliver_seconds)) if on]
            self.stopping.wait(max(0.05, min(waits) - time.monotonic()))

    def _safely(self, what: str, run: object) -> None:
        try:
            run()  # type: ignore[operator]
        except Exception:  # a database hiccup must not stop the loop: the next turn tries again
            log.exception("the background %s run failed", what)
