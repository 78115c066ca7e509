"""ctx.map (cardio.context.map_processes): a stage's record-wise work over the run's CPUs gives what the loop gives,
in item order, and the error the loop would raise."""
import os
import signal

import pytest

from cardio import CardioError
from cardio.context import map_processes


def _square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def _refuse_odd(x: int) -> int:
    if x % 2:
        raise CardioError(f"record {x}: odd")
    return x


def _killed(x: int) -> int:
    if x == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
    return x


def _quiet(items, desc="", total=None):
    return items


def test_processes_give_the_loops_results_in_order():
    items = list(range(23))
    serial = map_processes(_square_and_pid, items, _quiet, workers=1)
    forked = map_processes(_square_and_pid, items, _quiet, workers=3)
    assert [r for r, _ in forked] == [r for r, _ in serial] == [x * x for x in items]
    assert {pid for _, pid in serial} == {os.getpid()}
    assert os.getpid() not in {pid for _, pid in forked}  # the work ran in the workers


def test_the_first_error_in_item_order_is_raised_as_the_loop_raises_it():
    for workers in (1, 2):
        with pytest.raises(CardioError, match="record 3: odd"):
            map_processes(_refuse_odd, [0, 2, 4, 3, 6, 5], _quiet, workers=workers)


def test_one_item_or_one_cpu_runs_here():
    assert map_processes(_square_and_pid, [4], _quiet, workers=8) == [(16, os.getpid())]
    assert map_processes(_square_and_pid, [], _quiet, workers=8) == []


def test_a_worker_killed_from_outside_is_one_line_naming_the_stage():
    with pytest.raises(CardioError, match="phase analysis: a worker process died without an error") as err:
        map_processes(_killed, list(range(6)), _quiet, "phase analysis", workers=2)
    assert "\n" not in str(err.value)
