"""Session-sticky, least-loaded routing and the session messages, without Dynamo running."""

from __future__ import annotations

import grpc
import pytest

pytest.importorskip("dynamo.runtime", reason="needs the 'dynamo' extra (ai-dynamo-runtime)")

from asr.dynamo.routing import SessionRouter
from asr.dynamo.wire import WireStatus, WorkerLoad, runtime_status
from asr.errors import (
    ResourceExhaustedError,
    StreamInterruptedError,
    UnavailableError,
    from_grpc_error,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def router(*ids: int, clock: Clock | None = None) -> SessionRouter:
    r = SessionRouter(clock=clock or Clock(), quarantine=5.0)
    r.set_instances(ids)
    return r


def test_new_sessions_take_turns_over_equal_instances() -> None:
    r = router(1, 2)
    picks = []
    for n in range(4):
        instance = r.choose()
        assert instance is not None
        r.bind(f"s{n}", instance)
        r.release(f"s{n}")
        picks.append(instance)
    assert sorted(picks) == [1, 1, 2, 2]
    assert r.opened == {1: 2, 2: 2}


def test_open_sessions_stick_and_the_next_goes_to_the_less_loaded() -> None:
    r = router(1, 2)
    r.bind("a", 1)
    assert r.choose() == 2
    r.bind("b", 2)
    r.bind("c", 2)
    assert r.instance_of("a") == 1
    assert r.choose() == 1
    assert r.sessions == {"a": 1, "b": 2, "c": 2}


def test_reported_load_counts_other_clients_sessions() -> None:
    r = router(1, 2)
    r.report(1, WorkerLoad(active_streams=6, max_streams=8))
    r.report(2, WorkerLoad(active_streams=1, max_streams=8))
    assert r.choose() == 2
    # Sessions sent since the report count on top of it until the next one.
    for n in range(5):
        r.bind(f"s{n}", 2)
    assert r.estimated_streams(2) == 6
    assert r.choose() == 1  # a tie at 6/8: the one picked longest ago
    r.report(2, WorkerLoad(active_streams=5, max_streams=8))  # one of them ended
    assert r.estimated_streams(2) == 5  # the sessions still open count, not more
    assert r.choose() == 2


def test_utilisation_not_count_decides_between_sizes() -> None:
    r = router(1, 2)
    r.report(1, WorkerLoad(active_streams=3, max_streams=4))
    r.report(2, WorkerLoad(active_streams=4, max_streams=16))
    assert r.choose() == 2


def test_failed_instance_is_passed_over_until_quarantine_ends() -> None:
    clock = Clock()
    r = router(1, 2, clock=clock)
    r.failed(1)
    assert not r.available(1)
    assert [r.choose() for _ in range(3)] == [2, 2, 2]
    clock.now += 5.1
    assert r.available(1)
    r.bind("x", 2)
    assert r.choose() == 1


def test_a_report_brings_a_failed_instance_back() -> None:
    r = router(1)
    r.failed(1)
    assert r.choose() is None
    r.report(1, WorkerLoad(active_streams=0, max_streams=8))
    assert r.choose() == 1


def test_draining_and_excluded_instances_get_no_new_sessions() -> None:
    r = router(1, 2, 3)
    r.report(1, WorkerLoad(active_streams=0, max_streams=8, serving=False))
    assert r.choose(exclude=[2]) == 3
    assert r.choose(exclude=[2, 3]) is None


def test_vanished_instances_are_dropped_new_ones_added() -> None:
    r = router(1, 2)
    r.bind("a", 1)
    r.set_instances([2, 3])
    assert r.instances == [2, 3]
    r.release("a")  # its instance is gone: nothing to count down
    assert r.choose() in (2, 3)


def test_load_frames_round_trip() -> None:
    load = WorkerLoad(active_streams=2, max_streams=8, serving=False, queued_decodes=3)
    assert WorkerLoad.from_frame(load.to_frame()) == load
    assert load.utilisation == 0.25


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("Unavailable: TCP connection to 127.0.0.1:4 failed", grpc.StatusCode.UNAVAILABLE),
        ("Unavailable: Stream ended before generation completed", grpc.StatusCode.UNAVAILABLE),
        ("Server overloaded: worker at capacity", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ("something else", grpc.StatusCode.UNKNOWN),
    ],
)
def test_runtime_errors_become_statuses(message: str, code: grpc.StatusCode) -> None:
    assert runtime_status(ValueError(message)).code() is code


def test_statuses_translate_through_the_one_mapping() -> None:
    frame = {"error": {"code": "RESOURCE_EXHAUSTED", "details": "full"}}
    assert isinstance(from_grpc_error(WireStatus.from_frame(frame)), ResourceExhaustedError)
    dead = runtime_status(ValueError("Unavailable: Stream ended before generation completed"))
    assert isinstance(from_grpc_error(dead), UnavailableError)
    assert isinstance(from_grpc_error(dead, results_seen=True), StreamInterruptedError)
    odd = WireStatus.from_frame({"error": {"code": "NO_SUCH_CODE"}})
    assert odd.code() is grpc.StatusCode.UNKNOWN
