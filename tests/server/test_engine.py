"""The batcher: a request the model fails on does not sink its batch-mates."""

from __future__ import annotations

import asyncio

from presample import Presampler, PresampleRequest, RefineOptions, RefineSession
from presample.engine.backend import ModelError
from presample.server.engine import Engine

from .conftest import FAST


def test_a_failing_job_fails_alone(settings) -> None:
    presampler = Presampler(settings.models[0], dtype="float32")
    presampler.sampling = presampler.sampling.with_(max_new_tokens=4)
    # An input longer than the model's context: the model refuses that job only.
    one = {**FAST, "caption_candidates": 1}
    too_long = PresampleRequest(prompt="1girl", nl_prompt="a long walk " * 600, **one)

    async def scenario() -> tuple[object, object]:
        engine = Engine(presampler, queue_size=8, window_seconds=0.05, max_merged=8)
        engine.start()
        try:
            good, bad = engine.submit(
                [
                    (PresampleRequest(prompt="1girl", seed=1, **one), None),
                    (too_long, None),
                ]
            )
            done = await asyncio.gather(good, bad, return_exceptions=True)
            # One draw each per call (caption_candidates=1): the batch counts requests.
            assert engine.stats.largest_batch == 2, "they were in one model call"
            return done[0], done[1]
        finally:
            await engine.stop()

    good, bad = asyncio.run(scenario())
    assert isinstance(bad, ModelError) and "context" in str(bad)
    assert not isinstance(good, Exception) and good.seed == 1
    with Presampler(settings.models[0], dtype="float32") as alone:
        alone.sampling = alone.sampling.with_(max_new_tokens=4)
        assert good.prompt == alone(PresampleRequest(prompt="1girl", seed=1, **one)).prompt


def test_refine_candidates_share_model_calls_with_other_requests(settings) -> None:
    presampler = Presampler(settings.models[0], dtype="float32")
    presampler.sampling = presampler.sampling.with_(max_new_tokens=8)
    options = RefineOptions(seed=3, candidates=3, sfw=False)
    requests = [PresampleRequest(prompt="1girl", seed=s, caption_candidates=1) for s in (1, 2)]

    async def scenario() -> tuple[list, list]:
        engine = Engine(presampler, queue_size=8, window_seconds=0.05, max_merged=8)
        engine.start()
        try:
            session = RefineSession(presampler, "1girl, scenery", options)
            presampled = engine.submit([(r, None) for r in requests])
            candidates = await engine.drive(session.proposing())
            others = await asyncio.gather(*presampled)
            # A round's three draws beside the two requests still running.
            assert engine.stats.largest_batch > options.candidates, engine.stats
            return candidates, others
        finally:
            await engine.stop()

    candidates, others = asyncio.run(scenario())  # the engine closes its presampler
    assert candidates, "the tiny model's draws survive the filters at this seed"
    # The same candidates and prompts as each drawn on its own.
    with Presampler(settings.models[0], dtype="float32") as alone:
        alone.sampling = alone.sampling.with_(max_new_tokens=8)
        assert candidates == RefineSession(alone, "1girl, scenery", options).propose()
        assert [r.prompt for r in others] == [alone(r).prompt for r in requests]


def test_sampling_values_the_sampler_cannot_take_are_refused(client) -> None:
    for sampling, message in [
        ({"temperature": 1e-300}, "temperature: 0 (greedy) or at least 0.01"),
        ({"top_p": 1e-300}, "sampling.top_p: Input should be greater than or equal to 0.001"),
    ]:
        response = client.post("/api/presample", json={"prompt": "1girl", "sampling": sampling})
        assert response.status_code == 422 and message in response.json()["detail"]
