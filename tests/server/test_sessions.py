"""The refine session store: bounded, least recently used out first, expiring."""

from __future__ import annotations

from presample.server.sessions import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_when_left_alone_and_use_keeps_them() -> None:
    clock = Clock()
    store = SessionStore(capacity=10, ttl=60, clock=clock)
    kept, left = store.add("kept", "m"), store.add("left", "m")
    clock.now = 50
    assert store.get(kept) is not None  # touched: its minute starts again
    clock.now = 100
    assert store.get(left) is None
    assert store.get(kept).session == "kept"
    assert len(store) == 1


def test_a_full_store_evicts_the_least_recently_used() -> None:
    store = SessionStore(capacity=2, ttl=60, clock=Clock())
    a, b = store.add("a", "m"), store.add("b", "m")
    store.get(a)
    c = store.add("c", "m")
    assert store.get(b) is None
    assert store.get(a) is not None and store.get(c) is not None
    assert len({a, b, c}) == 3, "ids are unique"
