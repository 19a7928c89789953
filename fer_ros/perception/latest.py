"""One-slot mailboxes between a frame source and a slower consumer: the newest frame wins
(``LatestFrame``; ``FaceInbox`` keeps one slot per face of another detector).

Why not a queue: when inference is slower than the camera, a queue grows without bound and every
result describes an ever older moment. With one slot the consumer always gets the newest frame,
the latency stays under about two processing times, and the frames it never saw are counted
(``dropped``) so the loss is visible in diagnostics. ROS-free, so the node, the benchmark and
tests share it.
"""
from __future__ import annotations

import threading
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
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout) or not self._full:
                return None  # timed out, or closed and empty
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


class FaceInbox(Generic[T]):
    """The newest item per face id, between subscription callbacks and one processing thread.

    LatestFrame's rule per face: a face's newer crop replaces its waiting one (``put`` says so,
    a drop), the other faces' crops wait beside it, so no queue builds up and a busy face cannot
    starve the others. ``take`` removes everything waiting; ``discard`` forgets a face that left.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: dict[str, T] = {}
        self._closed = False

    def put(self, face_id: str, item: T) -> bool:
        """Store ``item`` as the face's newest; True when it replaced one nobody took."""
        with self._cond:
            replaced = face_id in self._items
            self._items.pop(face_id, None)
            self._items[face_id] = item  # at the end: items are kept in the order they arrived
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> dict[str, T] | None:
        """Every face's waiting item, oldest first, waiting up to ``timeout`` seconds; None on timeout or close."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items) or self._closed, timeout):
                return None
            items, self._items = self._items, {}
            return items or None

    def discard(self, face_id: str) -> None:
        with self._cond:
            self._items.pop(face_id, None)

    def close(self) -> None:
        """Wake every waiting ``take``; later takes return what is left, then None without waiting."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)
