"""The build's process pool: independent jobs (reading samples files, drawing the heatmaps) run in
worker processes while the main process draws and compares; with one CPU, the same calls run in the
main process when their result is asked for."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable


class Workers:
    def __init__(self, n: int | None = None, jobs: int | None = None) -> None:
        """``n`` processes; by default the CPUs, at most 8 and at most ``jobs`` (the build's job count:
        a pool for one samples file would only add start-up)."""
        if n is None:
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            n = min(cpus, 8, jobs if jobs is not None else cpus)
        self._pool = ProcessPoolExecutor(n) if n > 1 else None

    def map(self, fn: Callable, *iterables, chunksize: int = 1) -> Callable[[], list]:
        """Start ``fn`` over the iterables; the returned call waits for the results, in order."""
        if self._pool is None:
            args = list(zip(*iterables))
            return lambda: [fn(*a) for a in args]
        results = self._pool.map(fn, *iterables, chunksize=chunksize)
        return lambda: list(results)

    def submit(self, fn: Callable, *args) -> Callable[[], Any]:
        if self._pool is None:
            return lambda: fn(*args)
        return self._pool.submit(fn, *args).result

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=exc[0] is not None)
