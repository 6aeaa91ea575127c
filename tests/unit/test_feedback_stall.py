"""The feedback worker's stall watch: which partitions count as stalled, and when."""

from __future__ import annotations

import pytest

from streams.feedback.stall import Position, StallWatch

pytestmark = pytest.mark.unit

A, B = ("scored", 0), ("labels", 1)


def test_records_waiting_behind_an_unmoving_offset_stall_after_the_limit() -> None:
    watch = StallWatch(stall_s=30)
    assert watch.observe(0, {A: Position(10, 0, 50)}) == []
    assert watch.observe(29, {A: Position(10, 0, 50)}) == []
    assert watch.observe(30, {A: Position(10, 0, 50)}) == [A]


def test_a_moving_offset_or_an_empty_backlog_starts_the_clock_over() -> None:
    watch = StallWatch(stall_s=30)
    watch.observe(0, {A: Position(10, 0, 50), B: Position(5, 0, 9)})
    assert watch.observe(20, {A: Position(11, 0, 50), B: Position(9, 0, 9)}) == []
    assert watch.observe(45, {A: Position(11, 0, 50), B: Position(9, 0, 12)}) == []
    assert watch.observe(50, {A: Position(11, 0, 50), B: Position(9, 0, 12)}) == [A]
    assert watch.observe(75, {A: Position(11, 0, 50), B: Position(9, 0, 12)}) == sorted([A, B])


def test_a_partition_with_nothing_committed_waits_from_the_start_of_its_log() -> None:
    watch = StallWatch(stall_s=10)
    assert not Position(-1, 40, 40).waiting  # everything before 40 was deleted
    assert Position(-1, 0, 3).waiting
    watch.observe(0, {A: Position(-1, 40, 40), B: Position(-1, 0, 3)})
    assert watch.observe(10, {A: Position(-1, 40, 40), B: Position(-1, 0, 3)}) == [B]


def test_a_reset_or_a_partition_that_left_forgets_its_clock() -> None:
    watch = StallWatch(stall_s=10)
    watch.observe(0, {A: Position(1, 0, 5), B: Position(1, 0, 5)})
    watch.reset()  # a rebalance, a recovery or a sink call meanwhile
    assert watch.observe(10, {A: Position(1, 0, 5)}) == []
    assert watch.observe(15, {A: Position(1, 0, 5)}) == []
    assert watch.observe(20, {A: Position(1, 0, 5), B: Position(1, 0, 5)}) == [A]  # B is new
