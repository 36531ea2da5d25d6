"""A real uvicorn server under dozens of simultaneous clients."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx

from presample import Presampler
from presample.server import ServerSettings

from .conftest import FAST, live_server

CLIENTS = 24
PROMPTS = ("1girl, scenery", "1boy, armor", "landscape, mountains", "1girl, hatsune miku")
# One tag step without the rating steer keeps each request cheap on a random model.
CHEAP = {**FAST, "sfw": False, "generate_nl": False}


def _stats(url: str) -> dict:
    (stats,) = httpx.get(f"{url}/health").json()["models"].values()
    return stats


def test_simultaneous_requests_are_merged_and_equal_serial_ones(
    settings: ServerSettings,
) -> None:
    bodies = [
        {**CHEAP, "prompt": PROMPTS[i % len(PROMPTS)], "seed": 100 + i} for i in range(CLIENTS)
    ]
    # A window long enough that every client is queued before the first batch starts.
    configured = replace(settings, limits=replace(settings.limits, batch_window_seconds=0.5))
    with live_server(configured) as url:

        async def fire() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=300) as client:
                return await asyncio.gather(
                    *(client.post("/api/presample", json=body) for body in bodies)
                )

        responses = asyncio.run(fire())
        stats = _stats(url)
    assert [r.status_code for r in responses] == [200] * CLIENTS
    served = [r.json() for r in responses]
    assert [s["seed"] for s in served] == [b["seed"] for b in bodies]

    with Presampler(settings.models[0], dtype="float32") as serial:
        serial.sampling = serial.sampling.with_(**settings.sampling)
        expected = [serial(body).prompt for body in bodies]
    assert [s["prompt"] for s in served] == expected

    # Merged: each model call carried the jobs of many requests, so there were far
    # fewer calls than the requests' own model calls (every step and retry) in all.
    own_calls = sum(step["attempts"] for result in served for step in result["steps"])
    assert stats["requests"] == CLIENTS
    assert stats["jobs"] == own_calls
    assert stats["calls"] < own_calls / 4
    assert stats["largest_batch"] >= CLIENTS / 2


def test_work_of_a_client_that_disconnects_is_dropped(settings: ServerSettings) -> None:
    # The batcher waits 3 s for company; the client gives up after 0.5 s.
    configured = replace(settings, limits=replace(settings.limits, batch_window_seconds=3.0))
    with live_server(configured) as url:
        try:
            httpx.post(f"{url}/api/presample", json={**CHEAP, "prompt": "1girl"}, timeout=0.5)
        except httpx.TimeoutException:
            pass
        else:
            raise AssertionError("the request should not have been answered yet")
        for _ in range(100):
            stats = _stats(url)
            if stats["dropped"]:
                break
            asyncio.run(asyncio.sleep(0.1))
        # Still answers others afterwards.
        after = httpx.post(f"{url}/api/presample", json={**CHEAP, "prompt": "1girl"}, timeout=60)
    assert stats["dropped"] == 1 and stats["requests"] == 0
    assert after.status_code == 200
