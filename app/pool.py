"""The bounded pool that runs inference off the event loop."""

import asyncio
import itertools
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial
from typing import TypeVar

import torch

Result = TypeVar("Result")
URGENT, SOON, ROUTINE, STOP = 0, 1, 2, 3
GIL_SWITCH_INTERVAL_S = 0.0005


def configure_process(threads: int) -> None:
    """Process-wide CPU settings, applied once at start-up, before any inference.

    oneDNN's LSTM kernel reorders the weights on every call: a one-character
    step took 2.3 ms with it and 0.28 ms with PyTorch's own kernel, and typing is
    the hot path (a 200-character pass gets a few ms slower instead). GRU has no
    oneDNN path, and the Nested LSTM is plain tensor code.
    """
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]  # a settable flag that torch types as its descriptor
    # A connectivity sweep is a Python loop of small tensor ops that holds the GIL between them; a
    # thread waiting for it (a keystroke on the urgent lane, the event loop) waits a whole switch
    # interval each time it needs the GIL back, and a forward pass needs it once per op. At the
    # default 5 ms, a 200-character text's suggestions took 1.6 s beside a sweep instead of 20 ms.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


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
    """`workers` threads, each using `threads` PyTorch threads; at most `max_queued` jobs admitted at once.

    Urgent jobs (keystrokes, a few milliseconds each) run on a thread of their
    own, the urgent lane, so they never wait behind a job that is not (a full
    connectivity matrix takes seconds). The `workers` threads take the rest:
    `soon` jobs (a whole text's suggestions, tens of milliseconds) ahead of
    routine ones, first come first served within each. With
    `urgent_lane=False`, urgent jobs instead go ahead of every waiting job on
    the shared threads.

    A job about several units can `spread` them over `spread_threads` threads
    of their own: the hand-written units' loops run compiled, without the
    interpreter lock (models.units.scripted), so on a quiet machine the other
    cores take their share, and on a busy one the threads only wait their turn.
    """

    def __init__(self, workers: int, threads: int, max_queued: int, urgent_lane: bool = True, spread_threads: int = 1) -> None:
        self.max_queued = max_queued
        self._spread = (
            ThreadPoolExecutor(spread_threads, "inference-spread", initializer=configure_inference_thread, initargs=(threads,))
            if spread_threads > 1
            else None
        )
        self._admitted = 0  # jobs queued or running; only touched on the event loop thread
        self._jobs: queue.PriorityQueue = queue.PriorityQueue()
        self._urgent_jobs: queue.PriorityQueue = self._jobs if not urgent_lane else queue.PriorityQueue()
        self._arrivals = itertools.count()
        self._workers = [
            threading.Thread(target=self._work, args=(threads, self._jobs), name=f"inference-{index}", daemon=True) for index in range(workers)
        ]
        if urgent_lane:
            self._workers.append(threading.Thread(target=self._work, args=(threads, self._urgent_jobs), name="inference-urgent", daemon=True))
        for worker in self._workers:
            worker.start()

    def _work(self, threads: int, jobs: queue.PriorityQueue) -> None:
        configure_inference_thread(threads)
        while True:
            _, _, job = jobs.get()
            if job is None:
                return
            loop, future, function = job
            # Its request went away while it waited (a benign race: cancelled just after this check, it runs and is dropped).
            if future.cancelled():
                loop.call_soon_threadsafe(self._finish, future, None, None)
                continue
            try:
                result = function()
            except Exception as error:
                loop.call_soon_threadsafe(self._finish, future, None, error)
            else:
                loop.call_soon_threadsafe(self._finish, future, result, None)

    async def run(self, function: Callable[..., Result], *args: object, urgent: bool = False, soon: bool = False) -> Result:
        if self._admitted >= self.max_queued:
            raise ServerBusy(f"{self._admitted} inference requests are already queued (RNN_MAX_QUEUED_REQUESTS); retry shortly")
        # Released by `_finish` when a worker is done with the job, not when the request stops waiting: a request
        # that goes away leaves its job in the queue, and the limit bounds queued jobs, abandoned or not.
        self._admitted += 1
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        jobs = self._urgent_jobs if urgent else self._jobs
        priority = URGENT if urgent else SOON if soon else ROUTINE
        jobs.put((priority, next(self._arrivals), (loop, future, partial(function, *args))))
        return await future

    def spread(self, functions: Sequence[Callable[[], Result]]) -> list[Result]:
        """Within a job: each function's result, in order, computed on the spread threads (in turn when there are none).

        The first function to raise raises here, after the others have finished.
        """
        if self._spread is None or len(functions) < 2:
            return [function() for function in functions]
        futures = [self._spread.submit(function) for function in functions]
        wait(futures)  # all of them, so that a failure leaves no unit still computing for a job that has ended
        return [future.result() for future in futures]

    def _finish(self, future: asyncio.Future, result: object, error: BaseException | None) -> None:
        """On the event loop: the job has left the queue; hand its outcome to the request if it still waits."""
        self._admitted -= 1
        if future.done():  # the request was cancelled, e.g. its client went away
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    def shutdown(self) -> None:
        """Finish the jobs already queued, then stop every worker."""
        for worker in self._workers:
            jobs = self._urgent_jobs if worker.name == "inference-urgent" else self._jobs
            jobs.put((STOP, next(self._arrivals), None))
        for worker in self._workers:
            worker.join()
        if self._spread is not None:
            self._spread.shutdown()

