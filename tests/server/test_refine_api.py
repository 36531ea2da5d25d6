"""Refine sessions over HTTP on the tiny test model."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

pytest.importorskip("presample.refine")

START = {"prompt": "1girl, scenery", "options": {"seed": 3, "sfw": False}}


def with_candidates(client: TestClient, view: dict) -> dict:
    """Re-draw until the random model's draws survive the filters (bounded)."""
    for _ in range(12):
        if view["candidates"]:
            return view
        view = client.post(f"/api/refine/{view['id']}/redraw").json()
    pytest.fail("a dozen re-draws gave no candidate")


def test_start_pick_undo_and_history(client: TestClient) -> None:
    started = client.post("/api/refine", json=START)
    assert started.status_code == 200, started.text
    view = with_candidates(client, started.json())
    assert view["prompt"] == "1girl, scenery" and view["round"] == 0 and not view["can_undo"]
    first_round = view["candidates"]
    for candidate in first_round:
        assert candidate["prompt"].startswith("1girl, scenery"), "never drops what the user has"
        assert candidate["added"]

    chosen = first_round[-1]
    picked = client.post(f"/api/refine/{view['id']}/pick", json={"index": chosen["index"]})
    assert picked.status_code == 200, picked.text
    after = picked.json()
    assert after["prompt"] == chosen["prompt"]
    assert after["history"] == ["1girl, scenery", chosen["prompt"]]
    assert after["round"] == 1 and after["can_undo"]
    assert after["candidates"] is not None, "the next round is drawn with the pick"

    undone = client.post(f"/api/refine/{view['id']}/undo").json()
    assert undone["prompt"] == "1girl, scenery" and undone["round"] == 0
    assert undone["candidates"] == first_round, "undo brings the same candidates back"


def test_the_same_seed_gives_the_same_candidates(client: TestClient) -> None:
    one = client.post("/api/refine", json=START).json()
    two = client.post("/api/refine", json=START).json()
    assert one["id"] != two["id"]
    assert one["seed"] == two["seed"] == 3
    assert one["candidates"] == two["candidates"]


def test_saved_state_restores_the_session(client: TestClient) -> None:
    view = with_candidates(client, client.post("/api/refine", json=START).json())
    client.post(f"/api/refine/{view['id']}/pick", json={"index": 0})
    state = client.get(f"/api/refine/{view['id']}/state").json()
    restored = client.post("/api/refine/restore", json={"state": state})
    assert restored.status_code == 200, restored.text
    again = restored.json()
    assert again["id"] != view["id"]
    assert again["history"] == client.get(f"/api/refine/{view['id']}").json()["history"]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/refine", {"prompt": "   "}, 422, "the prompt is empty"),
        ("/api/refine", {"prompt": "a", "options": {"candidates": 99}}, 422, "options.candidates"),
        ("/api/refine", {"prompt": "a", "options": {"sead": 1}}, 422, "options.sead"),
        ("/api/refine", {"prompt": "a", "model": "nope"}, 422, "no model 'nope'"),
        (
            "/api/refine",
            {"prompt": "a", "options": {"strategy": "oneshot", "oneshot_tokens": 256}},
            422,
            "options.oneshot_tokens: at most 8 on this server",
        ),
        ("/api/refine/unknown-id/pick", {"index": 0}, 404, "no refine session 'unknown-id'"),
        ("/api/refine/restore", {"state": {"start": "a", "seed": 1, "round": 2}}, 422, "round"),
    ],
)
def test_bad_refine_calls_are_4xx_with_a_reason(
    make_client, path: str, body: dict, status: int, message: str
) -> None:
    client = make_client(limits={"max_new_tokens": 8})
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_actions_that_cannot_be_done_are_409(client: TestClient) -> None:
    view = client.post("/api/refine", json={**START, "propose": False}).json()
    assert view["candidates"] is None
    undo = client.post(f"/api/refine/{view['id']}/undo")
    assert undo.status_code == 409 and "nothing to undo" in undo.json()["detail"]
    pick = client.post(f"/api/refine/{view['id']}/pick", json={"index": 7})
    assert pick.status_code == 409


def test_sessions_are_bounded_and_can_be_ended(make_client) -> None:
    client = make_client(limits={"refine_sessions": 2})
    ids = [
        client.post("/api/refine", json={**START, "propose": False}).json()["id"] for _ in range(3)
    ]
    assert client.get(f"/api/refine/{ids[0]}").status_code == 404, "the oldest was evicted"
    assert client.get("/health").json()["refine_sessions"] == 2
    assert client.delete(f"/api/refine/{ids[2]}").status_code == 204
    assert client.get(f"/api/refine/{ids[2]}").status_code == 404
    assert client.delete(f"/api/refine/{ids[2]}").status_code == 404
