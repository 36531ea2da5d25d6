"""The batcher: a request the model fails on does not sink its batch-mates."""

from __future__ import annotations

import asyncio

import pytest
from conftest import FakeBackend
from fastapi import HTTPException

from presample import Presampler, PresampleRequest, RefineOptions, RefineSession
from presample.engine.backend import ContextFull, GenerationJob, ModelError, check_context
from presample.engine.sampling import Sampling
from presample.engine.scheduler import Run, run_all
from presample.server.api import _wait
from presample.server.engine import Engine, with_sampling

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


def test_a_run_with_its_own_sampling_still_hears_that_its_context_is_full() -> None:
    # A request with sampling settings runs wrapped (``with_sampling``); the wrapper
    # hands the model's refusal to the run inside, which ends with what it has.
    def catching() -> Run:
        try:
            yield GenerationJob("a", Sampling(), seed=0)
        except ContextFull:
            return "ended with what it had"
        return "written"

    refusing = FakeBackend(lambda job: check_context(1024, 1024) or "")
    (result,) = run_all(refusing, [with_sampling(catching(), Sampling(temperature=0.5))])
    assert result == "ended with what it had"
    assert refusing.jobs[0].sampling.temperature == 0.5


def test_a_shutdown_that_lands_in_the_client_check_answers_503() -> None:
    # The server's grace period ends while a request waits: wherever the cancellation
    # lands (CI once met it in the disconnect check, and the client got a 500), the
    # client is told to retry.
    class SlowClient:
        async def is_disconnected(self) -> bool:
            await asyncio.sleep(30)
            return False

    async def scenario() -> None:
        future = asyncio.get_running_loop().create_future()
        waiting = asyncio.create_task(_wait(SlowClient(), [future], 60))  # type: ignore[arg-type]
        await asyncio.sleep(1.0)  # past the first 0.25 s wait: inside the client check
        waiting.cancel()
        with pytest.raises(HTTPException) as raised:
            await waiting
        assert raised.value.status_code == 503 and "shutting down" in raised.value.detail
        assert future.cancelled(), "the request's work is dropped"

    asyncio.run(scenario())
