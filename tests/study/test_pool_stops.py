"""Interrupted (Ctrl-C, once or twice), a local pool's workers end with the study."""

from __future__ import annotations

import os
import time

import pytest

from sim.study import executors


def _pid_after(b: int) -> int:
    if b > 0:
        time.sleep(0.2)  # a block under way when the interrupt comes
    return os.getpid()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("twice", [False, True])
def test_workers_end_when_the_study_is_interrupted(twice, monkeypatch):
    pids = set()
    finished = executors._Processes(2).completed(_pid_after, range(40))
    for _ in range(4):
        pids.add(next(finished)[1])
    if twice:
        # The second Ctrl-C lands while the pool waits for the blocks under way.
        real = executors.cf.ProcessPoolExecutor.shutdown

        def interrupted(self, wait=True, *, cancel_futures=False):
            if wait:
                raise KeyboardInterrupt
            return real(self, wait=wait, cancel_futures=cancel_futures)

        monkeypatch.setattr(executors.cf.ProcessPoolExecutor, "shutdown", interrupted)
    with pytest.raises(KeyboardInterrupt):
        finished.throw(KeyboardInterrupt)
    monkeypatch.undo()
    for _ in range(100):  # the fork server reaps them a moment after they exit
        if all(_gone(p) for p in pids):
            break
        time.sleep(0.05)
    assert all(_gone(p) for p in pids), pids
