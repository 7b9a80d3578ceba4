"""Requests batched for the model: concurrent photos go through detection and the classifier
together, on a bounded number of threads, so that a burst of clients shares one MTCNN call
per image size instead of queueing one by one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np


class Full(RuntimeError):
    """More photos are waiting than the service admits (it answers 503)."""


class Batcher:
    """``submit(images)`` -> a Future of ``run(images)``'s per-image results.

    ``workers`` threads each take what is waiting, up to ``max_batch`` images, and call
    ``run`` once on all of it; a request never waits for others to arrive. At most
    ``max_queue`` images wait at once: past that ``submit`` raises Full.
    """

    def __init__(self, run: Callable[[list[np.ndarray]], Sequence], *, workers: int = 1,
                 max_batch: int = 16, max_queue: int = 256):
        self.run, self.max_batch, self.max_queue = run, max_batch, max_queue
        self._queue: queue.Queue = queue.Queue()
        self._waiting = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, daemon=True, name=f"batcher-{i}")
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, images: list[np.ndarray]) -> Future:
        fut: Future = Future()
        with self._lock:
            if self._waiting + len(images) > self.max_queue:
                raise Full(f"{self._waiting} photos are waiting (limit {self.max_queue})")
            self._waiting += len(images)
        self._queue.put((images, fut))
        return fut

    def _take(self) -> list[tuple[list[np.ndarray], Future]]:
        jobs = [self._queue.get()]
        n = len(jobs[0][0])
        while n < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
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
