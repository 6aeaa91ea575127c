"""The hash tag of every Redis Cluster slot, which places the state epoch's per-slot copies."""

from __future__ import annotations

import pytest

from features.realtime.epoch import epoch_copy_key
from features.redis_nodes import slot_of, slot_tags

pytestmark = pytest.mark.unit


def test_every_slot_has_a_tag_that_lands_a_key_in_it() -> None:
    tags = slot_tags()
    assert len(tags) == 16_384 and len(set(tags)) == 16_384
    assert [slot_of(f"fraud:epoch:{{{t}}}") for t in tags] == list(range(16_384))
    # slot_of agrees with Redis' published examples (CLUSTER KEYSLOT)
    assert (slot_of("somekey"), slot_of("foo{hash_tag}"), slot_of("hash_tag")) == (
        11058,
        2515,
        2515,
    )


def test_the_epoch_copy_of_a_slot_is_in_that_slot_whatever_the_prefix() -> None:
    for slot in (0, 1, 5_000, 16_383):
        assert slot_of(epoch_copy_key("fraud:epoch", slot)) == slot
        assert slot_of(epoch_copy_key("tenant-7:fraud:g3:epoch", slot)) == slot
