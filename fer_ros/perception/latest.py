"""A one-slot mailbox between a frame source and a slower consumer: the newest frame wins.

Why not a queue: when inference is slower than the camera, a queue grows without bound and every
result describes an ever older moment. With one slot the consumer always gets the newest frame,
the latency stays under about two processing times, and the frames it never saw are counted
(``dropped``) so the loss is visible in diagnostics. ROS-free, so the node, the benchmark and
tests share it.
"""
from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestFrame(Generic[T]):
    """Thread-safe single slot: ``put`` replaces whatever is waiting, ``take`` removes the newest.

    Counters (read them any time): ``received`` (puts), ``taken`` and ``dropped`` (items replaced
    before anybody took them). ``received == taken + dropped + (1 if an item waits else 0)``.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self.received = 0
        self.taken = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item`` as the newest; returns True when it replaced an untaken one (a drop)."""
        with self._cond:
            replaced = self._full
            self._item, self._full = item, True
            self.received += 1
            self.dropped += int(replaced)
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to ``timeout`` seconds (None: forever); None on timeout or close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._full and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if not self._full:
                return None  # closed and empty
            item, self._item, self._full = self._item, None, False
            self.taken += 1
            return item

    def close(self) -> None:
        """Wake every waiting ``take``; later takes return what is left, then None without waiting."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        """1 while an item waits, else 0."""
        return int(self._full)
