"""Where blocks run: in this process, in a local process pool, or on a Dask cluster.

An executor takes a *job* — a picklable callable from block index to block result, which
redraws its own randomness so only small results travel — and runs the blocks it is given,
yielding each result as it finishes, in any order. At most `window` blocks are in flight, so
the memory held is bounded by block size x workers, not by the number of runs. Closing the
iterator early (the caller has enough, or Ctrl-C) cancels what is pending and stops the
workers. Which executor ran a block never changes its bits: the result depends only on the
job and the block index.

    >>> with open_executor("serial", 1) as ex:
    ...     sorted(ex.completed(abs, [-2, -1]))
    [(-2, 2), (-1, 1)]
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any, Protocol

from sim.errors import ScenarioError
from sim.sampling.draws import draw_threads
from sim.study.provenance import build

EXECUTORS = ("processes", "dask")
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.preload": ["sim.study.runner"],
}
CONNECT_TIMEOUT = "20s"  # to reach a Dask scheduler given by address
Job = Callable[[int], Any]
WORKERS_IMPORT_THE_SCRIPT = (
    'a script that calls sim.run without `if __name__ == "__main__":`, or one read from '
    "standard input (worker processes import the calling script; save it to a file)"
)
Finished = Generator[tuple[int, Any], None, None]


class Executor(Protocol):
    workers: int

    def completed(self, job: Job, blocks: Iterable[int]) -> Finished:
        """(block, job(block)) for every block, as each finishes."""
        ...  # pragma: no cover


def default_workers() -> int:
    """All the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def open_executor(kind: str, workers: int, scheduler: str | None = None) -> Iterator[Executor]:
    """An executor of `kind` ("serial", "processes" or "dask") with `workers` workers.

    Dask joins the cluster at `scheduler` (an address such as tcp://10.0.0.5:8786), or starts
    a LocalCluster of `workers` single-threaded worker processes on the loopback interface."""
    if kind == "dask":
        with _Dask.start(workers, scheduler) as ex:
            yield ex
    elif kind == "processes" and workers > 1:
        yield _Processes(workers)
    else:
        yield _Serial()


def window(workers: int) -> int:
    """Blocks in flight: enough to keep every worker busy while results are written."""
    return 2 * workers


class _Serial:
    workers = 1

    def completed(self, job: Job, blocks: Iterable[int]) -> Finished:
        for b in blocks:
            yield b, job(b)


# -- a local process pool -----------------------------------------------------------------
_job: Job | None = None


def guard_worker(parent_alive: Connection) -> None:
    """What a sim worker process does first: leave Ctrl-C to the parent, and exit the moment
    the parent is gone (`parent_alive` is the read end of a pipe only the parent writes)."""
    # Ctrl-C reaches the whole process group; the parent decides what stops, not each worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_alive,), daemon=True).start()


def _init_worker(job: Job, parent_alive: Connection) -> None:
    guard_worker(parent_alive)
    global _job
    _job = job
    draw_threads(1)  # the pool's processes fill the cores already


def _exit_with_parent(parent_alive: Connection) -> None:
    # A parent killed outright (SIGKILL, power loss of the terminal) can't stop its pool;
    # the pool's own pipes don't tell idle workers. Only the parent holds the other end of
    # this one, so it reads end-of-file the moment the parent is gone.
    with contextlib.suppress(EOFError, OSError):
        parent_alive.recv()
    os._exit(1)


def _run_block(b: int) -> Any:
    assert _job is not None
    return _job(b)


def process_context() -> multiprocessing.context.BaseContext:
    """How sim starts worker processes: a study's pool, and the explorer's warm workers."""
    # Not fork: the parent may hold threads (progress bar, Arrow's pools) a fork would copy
    # mid-lock. forkserver forks workers from a clean single-threaded server; spawn elsewhere.
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["sim.study.runner"])  # the server imports once; workers fork warm
    return ctx


class _Processes:
    def __init__(self, workers: int):
        self.workers = workers

    def completed(self, job: Job, blocks: Iterable[int]) -> Finished:
        ctx = process_context()
        alive_r, alive_w = ctx.Pipe(duplex=False)
        pool = cf.ProcessPoolExecutor(
            self.workers, mp_context=ctx, initializer=_init_worker, initargs=(job, alive_r)
        )
        todo = iter(blocks)
        running: dict[cf.Future[Any], int] = {}

        def submit(b: int) -> None:
            try:
                running[pool.submit(_run_block, b)] = b
            except (cf.process.BrokenProcessPool, OSError) as exc:
                raise _died(f"could not hand block {b} to a worker process ({exc})") from None

        try:
            for b in todo:
                submit(b)
                if len(running) >= window(self.workers):
                    break
            while running:
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in sorted(done, key=running.__getitem__):
                    b = running.pop(future)
                    try:
                        result = future.result()
                    except cf.process.BrokenProcessPool:
                        raise _died(f"a worker process died while running block {b}") from None
                    yield b, result
                    nxt = next(todo, None)
                    if nxt is not None:
                        submit(nxt)
        finally:
            try:
                # Pending blocks are dropped; blocks under way (one per worker at most) finish,
                # because a worker killed while it hands back a result wedges the pool.
                pool.shutdown(wait=True, cancel_futures=True)
            except KeyboardInterrupt:
                _stop_workers(pool)  # asked twice: don't wait
                raise
            finally:
                alive_w.close()
                alive_r.close()


def _died(message: str) -> ScenarioError:
    return ScenarioError.one(
        message,
        hint="out of memory (try a smaller --block-size or fewer --workers), killed, or "
        + WORKERS_IMPORT_THE_SCRIPT,
    )


STOP_SECONDS = 5.0  # a terminated worker gets this long to go before it is killed


def _stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """End every worker process now, and wait until they have: none outlives the study."""
    # The pool keeps its processes private until Python 3.14 (terminate_workers()).
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(STOP_SECONDS)
            if process.is_alive():
                process.kill()
                process.join(STOP_SECONDS)
    with contextlib.suppress(Exception):
        pool.shutdown(wait=False, cancel_futures=True)


# -- Dask distributed -----------------------------------------------------------------------
def _run_on_dask(job: Job, b: int) -> Any:
    draw_threads(1)  # a cluster's workers fill their cores already, a block per thread
    return job(b)


# A lambda, which cloudpickle sends by value (it can't be looked up by name): a worker without
# sim can still run it and say so, where a named function of this module would fail to unpickle.
_PROBE = lambda: __import__("sim.study.provenance", fromlist=["build"]).build()  # noqa: E731


def _check_workers(client: Any) -> None:
    """Refuse a cluster whose workers can't import sim, or run other code than this machine:
    their blocks would fail, or not be the same bits."""
    ours = build()
    found = client.run(_PROBE, on_error="return")
    problems = []
    for worker, theirs in sorted(found.items()):
        if isinstance(theirs, BaseException):
            problems.append(f"{worker} can't import sim ({type(theirs).__name__}: {theirs})")
        elif theirs != ours:
            differ = ", ".join(
                f"{k} {theirs.get(k, 'missing')} (here {ours.get(k, 'missing')})"
                for k in sorted(set(ours) | set(theirs))
                if ours.get(k) != theirs.get(k)
            )
            problems.append(f"{worker} runs other code: {differ}")
    if problems:
        raise ScenarioError.one(
            "the Dask cluster's workers can't give the same bits as this machine: "
            + "; ".join(problems),
            hint="install the same sim and the same numpy, scipy and simpy on every worker",
        )


def check_scheduler(address: str, timeout: str | None = None) -> None:
    """Refuse a Dask scheduler address that is malformed, or where no scheduler answers, with
    one ScenarioError: called before a study writes anything to its results folder."""
    Client = _dask_client()
    try:
        with Client(address, timeout=timeout or CONNECT_TIMEOUT):
            pass
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise _unreachable(address, exc) from None


def _dask_client() -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise ScenarioError.one(
            "--executor dask needs Dask distributed, which is not installed",
            hint="install the dask extra: pip install -e '.[dask]' in a sim checkout",
        ) from None
    return Client


def _unreachable(address: str, exc: BaseException) -> ScenarioError:
    if isinstance(exc, ValueError | TypeError):
        return ScenarioError.one(
            f"--scheduler {address!r} is not a Dask scheduler address ({exc})",
            hint="write it as tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786",
        )
    return ScenarioError.one(f"cannot reach the Dask scheduler at {address} ({exc})")


class _Dask:
    def __init__(self, client: Any, workers: int):
        self.client = client
        self.workers = workers

    @classmethod
    @contextlib.contextmanager
    def start(cls, workers: int, scheduler: str | None) -> Iterator[_Dask]:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise ScenarioError.one(
                "--executor dask needs Dask distributed, which is not installed",
                hint="install the dask extra: pip install -e '.[dask]' in a sim checkout",
            ) from None
        with contextlib.ExitStack() as stack:
            if scheduler:
                try:
                    client = stack.enter_context(Client(scheduler, timeout=CONNECT_TIMEOUT))
                except (OSError, TimeoutError, ValueError, TypeError) as exc:
                    raise _unreachable(scheduler, exc) from None
                _check_workers(client)
                size = len(client.scheduler_info().get("workers", {})) or workers
            else:
                # Our own cluster: no statistical profiler sampling the block's thread every
                # 10 ms (it takes the GIL from numpy-heavy Python) and a calmer event loop.
                # Dask's MALLOC_TRIM_THRESHOLD_ is dropped: setting it at all turns off
                # glibc's adaptive mmap threshold, so every large numpy temporary becomes a
                # fresh mmap and page faults (about 14% slower blocks); the pool's workers
                # run with glibc's defaults, and so do these. Workers import sim.study.runner as
                # they start (a worker preload), as the pool's fork server does, rather than
                # when the first block arrives: that import, competing with the worker's
                # event loop, put the first result about 0.9 s later.
                # A cluster joined by address keeps its own settings.
                stack.enter_context(dask.config.set(LOCAL_CLUSTER_CONFIG))
                try:
                    cluster = stack.enter_context(
                        LocalCluster(
                            n_workers=workers,
                            threads_per_worker=1,
                            processes=True,
                            host="127.0.0.1",
                            dashboard_address=None,
                            silence_logs=logging.ERROR,
                        )
                    )
                except (RuntimeError, OSError, TimeoutError) as exc:
                    raise ScenarioError.one(
                        f"could not start a Dask LocalCluster ({exc})",
                        hint=f"usually {WORKERS_IMPORT_THE_SCRIPT}",
                    ) from None
                client = stack.enter_context(Client(cluster))
                size = workers
            yield cls(client, size)

    def completed(self, job: Job, blocks: Iterable[int]) -> Finished:
        from distributed import as_completed

        # One copy of the job on every worker; tasks then carry only a block index.
        shared = self.client.scatter(job, broadcast=True, hash=False)
        todo = iter(blocks)
        first = [b for _, b in zip(range(window(self.workers)), todo, strict=False)]
        futures = {self.client.submit(_run_on_dask, shared, b, pure=False): b for b in first}
        pending = as_completed(list(futures))
        clean = False
        try:
            for future in pending:
                b = futures.pop(future)
                yield b, future.result()
                nxt = next(todo, None)
                if nxt is not None:
                    new = self.client.submit(_run_on_dask, shared, nxt, pure=False)
                    futures[new] = nxt
                    pending.add(new)
            clean = True
        finally:
            if not clean and futures:
                self.client.cancel(list(futures))
