"""The bounded pool that runs inference off the event loop."""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

import torch

Result = TypeVar("Result")


def configure_inference_thread(threads: int) -> None:
    """Per-thread CPU settings, applied once as each inference thread starts.

    Both are thread-local: each worker has its own OpenMP team and its own
    floating-point control flags. Adjoints that decay over hundreds of steps
    become denormal floats, which made a full connectivity matrix 28x slower;
    flushing them to zero changes no value above 1e-38.
    """
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)


class ServerBusy(RuntimeError):
    """More inference requests are waiting than the configured limit."""


class InferencePool:
    """`workers` threads, each using `threads` PyTorch threads; at most `max_queued` jobs admitted at once."""

    def __init__(self, workers: int, threads: int, max_queued: int) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="inference", initializer=configure_inference_thread, initargs=(threads,)
        )
        self.max_queued = max_queued
        self._admitted = 0  # only touched on the event loop thread

    async def run(self, function: Callable[..., Result], *args: object) -> Result:
        if self._admitted >= self.max_queued:
            raise ServerBusy(f"{self._admitted} inference requests are already queued (RNN_MAX_QUEUED_REQUESTS); retry shortly")
        self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, partial(function, *args))
        finally:
            self._admitted -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
