"""A caption written from tags alone: several draws, the one about the tags is kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
from conftest import FakeBackend

from presample import PresampleRequest
from presample.engine.backend import GenerationJob, generate_samples
from presample.engine.sampling import Sampling
from presample.engine.scheduler import run_all
from presample.prepare import prepare
from presample.request import PresampleResult, TagSet
from presample.runs import RunOptions, tipo_run
from presample.tagdb import TagDatabase

OFF_TOPIC = " A detailed close-up captures a vibrant red wine glass. It rests on a gray table."
ON_TOPIC = " A girl stands in a wide scenery of mountains. A blue sky stretches above her."
OTHER = " A bowl of fruit sits on the counter. The light is soft."
TAGS = TagSet(special=["1girl"], general=["scenery", "mountain", "blue sky", "standing"])


def Scripted(texts: Sequence[str]) -> FakeBackend:
    """A backend whose continuation is chosen by the job's seed."""
    return FakeBackend(lambda job: texts[job.seed % len(texts)], name="scripted")


def run(
    backend: FakeBackend, request: PresampleRequest, db: TagDatabase, seed: int = 0
) -> PresampleResult:
    options = RunOptions(sampling=Sampling(), seed=seed)
    (result,) = run_all(backend, [tipo_run(prepare(request, db), db, options)])  # type: ignore[arg-type]
    assert isinstance(result, PresampleResult)
    return result


def caption_request(**kw: object) -> PresampleRequest:
    return PresampleRequest(**{"tags": TAGS, "expand_tags": False, "nl_length": "very_short", **kw})


def test_the_draw_that_talks_about_the_tags_is_kept(db: TagDatabase) -> None:
    for texts in ([OFF_TOPIC, ON_TOPIC, OTHER], [OTHER, OFF_TOPIC, ON_TOPIC]):
        backend = Scripted(texts)
        result = run(backend, caption_request(), db)
        assert "mountains" in result.generated
        # One batch of three draws, seeds 0, 1, 2; every draw's tokens are counted.
        # The on-topic draw wins though the off-topic one adds tags of its own.
        assert [j.seed for j in backend.jobs] == [0, 1, 2]
        assert result.steps[-1].generated_tokens == 15 and result.steps[-1].draws == 3
        assert result.steps[-1].model_output == ON_TOPIC


def test_one_candidate_is_the_reference_single_draw(db: TagDatabase) -> None:
    backend = Scripted([OFF_TOPIC, ON_TOPIC, OTHER])
    result = run(backend, caption_request(caption_candidates=1), db)
    assert "wine glass" in result.generated
    assert [j.seed for j in backend.jobs] == [0]


def test_retries_continue_the_caption_with_fresh_seeds(db: TagDatabase) -> None:
    # One sentence per draw never reaches "short" (2+ sentences) on the first call.
    backend = Scripted([" A girl on a hill.", " A glass.", " A bowl.", " The sky is blue."])
    result = run(backend, caption_request(nl_length="short"), db, seed=7)
    seeds = [j.seed for j in backend.jobs]
    assert seeds == [7, 8, 9, 10]  # three draws, then one retry that continues
    retry = backend.jobs[-1].prompt
    # Draw 8 is the one about the girl the tags count. The retry ends inside the
    # caption it continues, never with a second "long:".
    assert retry.endswith("long: A girl on a hill.") and retry.count("long:") == 1
    assert result.steps[-1].reached_target and result.steps[-1].draws == 4
    assert result.generated == "A girl on a hill. A bowl" and result.extended == ""


def test_a_caption_about_the_counted_people_beats_one_that_is_long_enough(
    db: TagDatabase,
) -> None:
    # "1girl": a short caption about her is extended rather than a two-sentence
    # stock caption kept, however many colour words it shares with the tags.
    tags = TagSet(special=["1girl"], general=["red nails", "white shirt", "gray hair"])
    backend = Scripted([OFF_TOPIC, " A woman smiles.", OTHER, " She waves."])
    result = run(backend, caption_request(tags=tags, nl_length="short"), db)
    assert result.generated == "A woman smiles. She waves"
    assert [j.seed for j in backend.jobs] == [0, 1, 2, 3]


def test_with_nobody_counted_a_caption_about_your_things_comes_first(db: TagDatabase) -> None:
    # `cat, window` with `car, street` on the line: a caption about a parked car fits
    # more of the line's words, but the user asked for a cat.
    tags = TagSet(general=["cat", "window", "car", "street", "road", "parked"])
    car = " A black car is parked on a street by the road."
    cat = " A cat sleeps."
    request = PresampleRequest(tags=tags, expand_tags=False, nl_length="very_short")
    prepared = prepare(request, db)
    prepared = replace(prepared, user_order=("cat", "window"))  # what the user typed
    for texts, caption_people, expected in (
        ([car, cat, OTHER], True, "A cat sleeps"),
        ([car, cat, OTHER], False, "A black car is parked on a street by the road"),
    ):
        options = RunOptions(sampling=Sampling(), seed=0)
        asked = prepared.request.model_copy(update={"caption_people": caption_people})
        run_ = tipo_run(replace(prepared, request=asked), db, options)
        (result,) = run_all(Scripted(texts), [run_])  # type: ignore[arg-type]
        assert isinstance(result, PresampleResult) and result.generated == expected


def test_a_caption_that_contradicts_the_hair_loses_to_one_that_does_not(
    db: TagDatabase,
) -> None:
    tags = TagSet(special=["1girl"], general=["long hair", "blonde hair", "blue eyes", "beach"])
    wrong = " A woman with short brown hair stands on a beach with long blue waves."
    right = " A woman stands by the sea."
    for texts in ([wrong, right, OTHER], [right, wrong, OTHER]):
        result = run(Scripted(texts), caption_request(tags=tags), db)
        assert result.generated == "A woman stands by the sea"


def test_only_a_caption_from_tags_alone_is_drawn_several_times(db: TagDatabase) -> None:
    # Tag expansion then a caption: the tag step is one draw.
    backend = Scripted([", smile, outdoors" + ON_TOPIC])  # names her: no fresh draw
    result = run(backend, PresampleRequest(prompt="1girl, scenery", nl_length="very_short"), db)
    tags, caption = result.steps
    assert caption.attempts == 1 and len(backend.jobs) == tags.attempts + 3
    # The user's own text is extended, not replaced: one draw per call.
    backend = Scripted([OTHER])
    result = run(backend, PresampleRequest(prompt="a cat sitting on a windowsill"), db)
    assert len(backend.jobs) == sum(s.attempts for s in result.steps)


def test_generate_samples_groups_draws_by_job() -> None:
    backend = Scripted(["a", "b", "c", "d", "e"])
    jobs = [
        GenerationJob("x", Sampling(), seed=0, samples=3),
        GenerationJob("y", Sampling(), seed=3),
        GenerationJob("z", Sampling(), seed=4, samples=1),
    ]
    out = generate_samples(backend, jobs)  # type: ignore[arg-type]
    assert [[g.text for g in o.samples()] for o in out] == [["a", "b", "c"], ["d"], ["e"]]
    assert len(backend.jobs) == 5 and all(j.samples == 1 for j in backend.jobs)


def test_a_job_without_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        GenerationJob("x", Sampling(), seed=0, samples=0)
