"""The hub's garbage-collection policy: survivors frozen every few seconds, a full collection only in a quiet moment (at
most hourly) or at the latest after six hours, and the steps doing what they say."""

from __future__ import annotations

import gc

from kds.collector import (
    FREEZE_EVERY_S,
    FULL_EVERY_S,
    FULL_LATEST_S,
    NEVER,
    QUIET_S,
    Collect,
    CollectorPolicy,
    carry_out,
    young_only,
)


def test_survivors_are_frozen_every_few_seconds_and_nothing_happens_between() -> None:
    p = CollectorPolicy(started=0.0)
    assert p.tick(1.0, last_frame=0.5) is Collect.FREEZE
    assert p.tick(1.5, last_frame=1.4) is Collect.NOTHING
    assert p.tick(1.0 + FREEZE_EVERY_S - 0.1, last_frame=None) is Collect.NOTHING
    assert p.tick(1.0 + FREEZE_EVERY_S, last_frame=None) is Collect.FREEZE


def test_a_full_collection_waits_for_a_quiet_moment_after_an_hour() -> None:
    p = CollectorPolicy(started=0.0)
    busy = [p.tick(t, last_frame=t - 0.01) for t in range(1, int(FULL_EVERY_S) + 600)]
    assert Collect.FULL not in busy, "never during a rush"
    t = FULL_EVERY_S + 600
    assert p.tick(t, last_frame=t - QUIET_S + 0.1) is not Collect.FULL
    assert p.tick(t + 1, last_frame=t + 1 - QUIET_S) is Collect.FULL
    assert p.tick(t + 2, last_frame=None) is Collect.NOTHING, "then it starts counting again"
    assert p.tick(t + 2 + FULL_EVERY_S, last_frame=None) is Collect.FULL


def test_a_store_never_quiet_still_gets_a_full_collection_after_six_hours() -> None:
    p = CollectorPolicy(started=100.0)
    steps = {t: p.tick(t, last_frame=t) for t in range(101, int(100 + FULL_LATEST_S) + 2)}
    fulls = [t for t, s in steps.items() if s is Collect.FULL]
    assert fulls == [int(100 + FULL_LATEST_S)]


def test_the_steps_freeze_and_unfreeze() -> None:
    before = gc.get_freeze_count()
    try:
        kept = [[k] for k in range(1000)]  # tracked objects that survive
        carry_out(Collect.FREEZE)
        assert gc.get_freeze_count() >= before + len(kept)
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert carry_out(Collect.FULL) >= 1, "a full collection unfreezes, and finds the dead cycle"
        assert gc.get_freeze_count() > 0, "and freezes the survivors again"
        assert carry_out(Collect.NOTHING) == 0
    finally:
        gc.unfreeze()


def test_during_service_no_full_collection_starts_on_its_own() -> None:
    before = gc.get_threshold()
    try:
        assert young_only() == before
        young, middle, full = gc.get_threshold()
        assert (young, middle) == before[:2], "the young generations are collected as usual"
        assert full == NEVER and full > 1_000_000, "a full pass only when the policy says (a quiet moment)"
    finally:
        gc.set_threshold(*before)
