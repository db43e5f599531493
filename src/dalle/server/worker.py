"""Drawing off the event loop: a bounded queue of jobs and one worker thread that runs them,
merging waiting text-to-image jobs for the same pipeline and settings into one batch."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from PIL import Image

from dalle.utils.images import to_pil

logger = logging.getLogger(__name__)

Partial = Callable[[int, list[Image.Image]], None]  # (partial index, one image per request image)


class QueueFull(Exception):
    """The server is busy: the client should retry later."""


@dataclass
class Job:
    """One request's work. Text-to-image jobs with the same ``key`` may run as one batch, each
    image drawn from its own seed, so a merged job draws what it would have drawn alone."""

    key: object  # None: never merged
    images: int
    draw: Callable[[list[str], list[int], Partial | None], torch.Tensor] | None = None
    prompts: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    run: Callable[[], list[Image.Image]] | None = None  # work that is not merged
    on_partial: Partial | None = None
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    cancelled: threading.Event = field(default_factory=threading.Event)


class Worker:
    def __init__(self, max_queue: int = 16, max_batch_images: int = 64) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self.max_queue, self.max_batch_images = max_queue, max_batch_images
        self._pending: list[Job] = []
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="dalle-worker", daemon=True)
        self.batches_run = 0  # how many batches merged more than one job (for tests and logs)
        self._thread.start()

    def submit(self, job: Job) -> concurrent.futures.Future:
        with self._cond:
            self._drop_cancelled()
            if self._stop or not self._thread.is_alive():
                raise RuntimeError("the worker has stopped")
            if len(self._pending) >= self.max_queue:
                raise QueueFull
            self._pending.append(job)
            self._cond.notify()
        return job.future

    @property
    def waiting(self) -> int:
        """Jobs waiting (not those whose clients left)."""
        with self._cond:
            self._drop_cancelled()
            return len(self._pending)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop after the job at hand; jobs still waiting are cancelled."""
        with self._cond:
            self._stop = True
            for job in self._pending:
                job.future.cancel()
            self._pending.clear()
            self._cond.notify()
        self._thread.join(timeout=10)

    def _drop_cancelled(self) -> None:  # with the lock held
        for job in [j for j in self._pending if j.cancelled.is_set()]:
            self._pending.remove(job)
            job.future.cancel()

    def _take(self) -> list[Job] | None:
        with self._cond:
            while not self._pending and not self._stop:
                self._cond.wait()
            if self._stop:
                return None
            self._drop_cancelled()
            if not self._pending:
                return []
            first = self._pending.pop(0)
            batch = [first]
            if first.key is not None:
                total = first.images
                for job in list(self._pending):
                    if job.key == first.key and total + job.images <= self.max_batch_images:
                        batch.append(job)
                        total += job.images
                        self._pending.remove(job)
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            # a future cancelled meanwhile (its client left) is not run
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                if batch[0].run is not None:
                    results = [batch[0].run()]
                else:
                    results = self._draw(batch)
                for job, images in zip(batch, results, strict=True):
                    job.future.set_result(images)
            except Exception as e:  # handed to the requests that asked; the worker goes on
                logger.exception("a job failed")
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(e)

    def _draw(self, batch: list[Job]) -> list[list[Image.Image]]:
        prompts = [p for job in batch for p in job.prompts]
        seeds = [s for job in batch for s in job.seeds]
        on_partial = batch[0].on_partial if len(batch) == 1 else None
        if len(batch) > 1:
            self.batches_run += 1
        pixels = batch[0].draw(prompts, seeds, on_partial)
        images = to_pil(pixels)
        out, start = [], 0
        for job in batch:
            out.append(images[start : start + job.images])
            start += job.images
        return out
