"""Once started, the process stops walking what start-up built and collects its young
objects less often (``bot.app.settle_memory``)."""

import gc
from collections.abc import Iterator

import pytest

from bot.app import YOUNG_GENERATION, settle_memory


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    gc.unfreeze()
    built_at_start = [object() for _ in range(100)]
    _, middle, old = gc.get_threshold()
    settle_memory()
    assert gc.get_freeze_count() >= len(built_at_start)
    assert gc.get_threshold() == (YOUNG_GENERATION, middle, old)
    assert YOUNG_GENERATION > 700  # Python's default, which this replaces
