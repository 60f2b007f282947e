"""The CPU-time bound on reading an upload (training/server.py ``cpu_limit``)."""

from __future__ import annotations

import signal
import time

import pytest

from linernotes.training.server import CpuLimitExceeded, cpu_limit


def test_the_limit_stops_work_and_is_gone_afterwards():
    start = time.process_time()
    with pytest.raises(CpuLimitExceeded), cpu_limit(0.2):
        while time.process_time() - start < 10:
            sum(range(1000))
    assert time.process_time() - start < 2
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)


def test_the_limit_strikes_again_when_its_first_raise_is_swallowed():
    """Python drops an exception raised inside a finalizer or weakref callback; the limit must not."""
    start, strikes = time.process_time(), 0

    def work() -> None:
        while time.process_time() - start < 5:
            sum(range(1000))

    with pytest.raises(CpuLimitExceeded), cpu_limit(0.2):
        try:
            work()
        except CpuLimitExceeded:
            strikes += 1  # lost, as in a finalizer: the work goes on
        work()  # ends only if the limit strikes again
    assert strikes == 1 and time.process_time() - start < 3
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
