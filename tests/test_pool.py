"""The inference pool: urgent jobs first, errors handed back, admission bounded, a job's units spread over threads."""

import asyncio
import threading
from collections.abc import Callable

import pytest

from app.pool import InferencePool, ServerBusy


class WorkerHolder:
    """A job that takes the pool's only worker and keeps it until `release` is set."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self) -> None:
        self.started.set()
        self.release.wait(timeout=10)

    async def take(self, pool: InferencePool) -> asyncio.Task:
        """Run on `pool` and return once the worker is held."""
        running = asyncio.create_task(pool.run(self))
        await asyncio.to_thread(self.started.wait, 10)
        return running


def order_recorder(order: list[str]) -> Callable[[str], str]:
    """A job that notes its name in `order` as it runs, and returns it."""

    def job(name: str) -> str:
        order.append(name)
        return name

    return job


def test_urgent_jobs_overtake_waiting_routine_ones() -> None:
    async def scenario() -> list[str]:
        pool = InferencePool(workers=1, threads=1, max_queued=10)
        holder, order = WorkerHolder(), []
        job = order_recorder(order)
        running = await holder.take(pool)
        waiting = [asyncio.create_task(pool.run(job, name, urgent=name.startswith("key"))) for name in ("hover 1", "key 1", "hover 2", "key 2")]
        await asyncio.sleep(0.05)  # every job is queued behind the held worker
        holder.release.set()
        results = await asyncio.gather(running, *waiting)
        pool.shutdown()
        assert results[1:] == ["hover 1", "key 1", "hover 2", "key 2"]
        return order

    assert asyncio.run(scenario()) == ["key 1", "key 2", "hover 1", "hover 2"]


def test_errors_reach_the_caller_and_admission_is_bounded() -> None:
    async def scenario() -> None:
        pool = InferencePool(workers=1, threads=1, max_queued=1)
        with pytest.raises(ZeroDivisionError):
            await pool.run(lambda: 1 / 0)
        release = threading.Event()
        first = asyncio.create_task(pool.run(release.wait, 10))
        await asyncio.sleep(0)
        with pytest.raises(ServerBusy, match="already queued"):
            await pool.run(lambda: None)
        release.set()
        assert await first is True
        pool.shutdown()

    asyncio.run(scenario())


def test_keystrokes_never_wait_for_a_running_sweep_and_suggestions_go_before_waiting_sweeps() -> None:
    async def scenario() -> list[str]:
        pool = InferencePool(workers=1, threads=1, max_queued=10)
        sweep, order = WorkerHolder(), []
        job = order_recorder(order)
        running = await sweep.take(pool)
        waiting = [asyncio.create_task(pool.run(job, "sweep 2")), asyncio.create_task(pool.run(job, "text", soon=True))]
        # The urgent lane answers while the sweep still holds the only worker.
        assert await asyncio.wait_for(pool.run(job, "key", urgent=True), 5) == "key"
        sweep.release.set()
        await asyncio.gather(running, *waiting)
        pool.shutdown()
        return order

    assert asyncio.run(scenario()) == ["key", "text", "sweep 2"]


def test_an_abandoned_request_counts_until_its_job_leaves_the_queue_and_is_never_run() -> None:
    async def scenario() -> list[str]:
        pool = InferencePool(workers=1, threads=1, max_queued=2)
        sweep, ran = WorkerHolder(), []
        running = await sweep.take(pool)
        abandoned = asyncio.create_task(pool.run(ran.append, "abandoned"))
        await asyncio.sleep(0)  # admitted and queued behind the sweep
        abandoned.cancel()
        with pytest.raises(asyncio.CancelledError):
            await abandoned
        # Its job still waits in the queue, so it still holds its place against RNN_MAX_QUEUED_REQUESTS.
        with pytest.raises(ServerBusy, match="2 inference requests are already queued"):
            await pool.run(ran.append, "refused")
        sweep.release.set()
        await running
        await pool.run(ran.append, "later")
        pool.shutdown()
        return ran

    # The worker passed over the abandoned job instead of computing an answer nobody waits for.
    assert asyncio.run(scenario()) == ["later"]


def test_spread_runs_a_jobs_functions_side_by_side_and_returns_their_results_in_order() -> None:
    async def scenario() -> None:
        pool = InferencePool(workers=1, threads=1, max_queued=10, spread_threads=2)
        # Each waits for the other to start: they finish only when two threads run them at once.
        first, second = threading.Event(), threading.Event()

        def meet(mine: threading.Event, other: threading.Event, name: str) -> tuple[str, str]:
            mine.set()
            assert other.wait(timeout=5), "the other function never ran beside this one"
            return name, threading.current_thread().name

        results = await pool.run(pool.spread, [lambda: meet(first, second, "gru"), lambda: meet(second, first, "lstm")])
        assert [name for name, _ in results] == ["gru", "lstm"]
        assert all(thread.startswith("inference-spread") for _, thread in results)
        pool.shutdown()

    asyncio.run(scenario())


def test_spread_raises_the_first_failure_after_every_function_has_finished() -> None:
    async def scenario() -> None:
        pool = InferencePool(workers=1, threads=1, max_queued=10, spread_threads=2)
        finished = threading.Event()

        def slow() -> None:
            finished.wait(0.2)
            finished.set()

        with pytest.raises(ZeroDivisionError):
            await pool.run(pool.spread, [lambda: 1 / 0, slow])
        assert finished.is_set()
        pool.shutdown()

    asyncio.run(scenario())


def test_one_spread_thread_answers_in_turn_on_the_jobs_own_thread() -> None:
    pool = InferencePool(workers=1, threads=1, max_queued=10, spread_threads=1)
    threads = asyncio.run(pool.run(pool.spread, [lambda: threading.current_thread().name] * 3))
    assert threads == ["inference-0"] * 3
    pool.shutdown()
