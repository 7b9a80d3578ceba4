"""Requests batched for the model: concurrent photos go through detection and the classifier
together, on a bounded number of threads, so that a burst of clients shares one MTCNN call
per image size instead of queueing one by one."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np


class Full(RuntimeError):
    """More photos are waiting than the service admits (it answers 503)."""


class Batcher:
    """``submit(images)`` -> a Future of ``run(images)``'s per-image results.

    ``workers`` threads each take what is waiting, up to ``max_batch`` images, and call
    ``run`` once on all of it. A request announced as on its way (``arriving``: being
    read or decoded) is waited for, up to ``max_wait_s``, so that clients answered by one
    batch join the next instead of trickling in one by one; a lone client never waits.
    At most ``max_queue`` images wait at once: past that ``submit`` raises Full.
    """

    def __init__(self, run: Callable[[list[np.ndarray]], Sequence], *, workers: int = 1,
                 max_batch: int = 16, max_queue: int = 256, max_wait_s: float = 0.02):
        self.run, self.max_batch, self.max_queue = run, max_batch, max_queue
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue = queue.Queue()
        self._waiting = 0
        self._arriving = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, daemon=True, name=f"batcher-{i}")
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    @contextlib.contextmanager
    def arriving(self):
        """Around reading, decoding and submitting a request: a batch being formed waits
        for it. Its ``submit(..., arrived=True)`` ends the wait as it enqueues."""
        state = {"submitted": False}
        with self._lock:
            self._arriving += 1
        try:
            yield state
        finally:
            if not state["submitted"]:
                with self._lock:
                    self._arriving -= 1

    def submit(self, images: list[np.ndarray], arrival: dict | None = None) -> Future:
        fut: Future = Future()
        with self._lock:
            if arrival is not None:  # enqueued: no longer on its way, in the same step
                arrival["submitted"] = True
                self._arriving -= 1
            if self._waiting + len(images) > self.max_queue:
                raise Full(f"{self._waiting} photos are waiting (limit {self.max_queue})")
            self._waiting += len(images)
            self._queue.put((images, fut))
        return fut

    def _take(self) -> list[tuple[list[np.ndarray], Future]]:
        jobs = [self._queue.get()]
        n = len(jobs[0][0])
        deadline = time.monotonic() + self.max_wait_s
        while n < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if self._arriving == 0 or left <= 0:
                    break
                try:
                    job = self._queue.get(timeout=min(left, 0.002))
                except queue.Empty:
                    continue
            jobs.append(job)
            n += len(job[0])
        return jobs

    def _loop(self) -> None:
        while True:
            jobs = self._take()
            images = [img for imgs, _ in jobs for img in imgs]
            with self._lock:
                self._waiting -= len(images)
            try:
                results = list(self.run(images))
            except Exception as e:  # noqa: BLE001 - the requests get the error, the thread lives
                for _, fut in jobs:
                    fut.set_exception(e)
                continue
            start = 0
            for imgs, fut in jobs:
                fut.set_result(results[start:start + len(imgs)])
                start += len(imgs)
