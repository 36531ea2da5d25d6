"""Which model calls of a TIPO run carry the length floors (tag line, caption)."""

from __future__ import annotations

from presample import PresampleRequest
from presample.caption_floor import CaptionFloor
from presample.engine.backend import Generation, GenerationJob
from presample.engine.sampling import Sampling
from presample.prepare import prepare
from presample.runs import RunOptions, tipo_run
from presample.tag_floor import AllOf, TagFloor
from presample.tagdb import TagDatabase


def jobs_of(request: PresampleRequest, db: TagDatabase, seed: int = 1) -> list[GenerationJob]:
    """Drive a run to its end, answering every call with an empty continuation."""
    run = tipo_run(prepare(request, db), db, RunOptions(sampling=Sampling(), seed=seed))
    jobs = [next(run)]
    try:
        while True:
            jobs.append(run.send(Generation(text="", prompt_tokens=1, new_tokens=0, finish="eos")))
    except StopIteration:
        return jobs


def floors(job: GenerationJob) -> list[int]:
    """The minimum of each tag-line rule of a job (0: real tags only, no floor)."""
    c = job.constraint
    parts = c.parts if isinstance(c, AllOf) else () if c is None else (c,)
    return [p.minimum for p in parts if isinstance(p, TagFloor)]


def test_tag_steps_carry_a_floor_drawn_from_the_requested_range(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="1girl, scenery", tag_length="short", nl_length="short")
    drawn = set()
    for seed in range(12):
        jobs = jobs_of(request, db, seed)
        tag_jobs = [j for j in jobs if j.prompt.rstrip().split("\n")[-1].startswith("tag:")]
        caption_jobs = [j for j in jobs if j not in tag_jobs]
        assert tag_jobs and caption_jobs
        (floor,) = {tuple(floors(j)) for j in tag_jobs}  # one floor for every retry
        assert len(floor) == 1 and 18 <= floor[0] <= 36
        assert all(floors(j) == [0] for j in caption_jobs)
        assert floors(jobs_of(request, db, seed)[0]) == list(floor)  # the seed decides
        drawn.add(floor[0])
    assert len(drawn) > 3


def test_bans_and_floor_apply_together(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="1girl", tag_length="very_short", ban=[{"pattern": "hat"}])
    first = jobs_of(request, db)[0]
    assert isinstance(first.constraint, AllOf)
    (floor,) = floors(first)
    assert 6 <= floor <= 18
    assert first.constraint.allowed(first.prompt + ", hat", [","]) == [False]


def test_real_tags_only_unless_turned_off(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="1girl, scenery", tag_length="short")
    first = jobs_of(request, db)[0]
    assert first.constraint is not None
    # The user's tags pass; a new tag must be real.
    assert first.constraint.allowed(first.prompt, [", smile,", ", smilezz,"]) == [True, False]
    loose = PresampleRequest(prompt="1girl, scenery", known_tags_only=False, tag_length="short")
    loose_first = jobs_of(loose, db)[0].constraint
    assert loose_first is not None
    assert loose_first.allowed(first.prompt, [", smilezz,"]) == [True]


def test_off_is_the_reference_behaviour(db: TagDatabase) -> None:
    request = PresampleRequest(
        prompt="1girl, scenery", fill_tag_length=False, known_tags_only=False
    )
    assert all(floors(j) == [] for j in jobs_of(request, db))


def test_one_seed_draws_different_floors_for_different_prompts(db: TagDatabase) -> None:
    prompts = ["1girl, scenery", "1boy, hat", "cat, outdoors", "2girls, beach", "dragon, sky"]
    drawn = {
        tuple(floors(jobs_of(PresampleRequest(prompt=p, tag_length="long"), db, seed=0)[0]))
        for p in prompts
    }
    assert len(drawn) > 1


def caption_floors(job: GenerationJob) -> list[int]:
    c = job.constraint
    parts = c.parts if isinstance(c, AllOf) else () if c is None else (c,)
    return [p.minimum for p in parts if isinstance(p, CaptionFloor)]


def test_caption_steps_carry_the_sentence_floor_unless_turned_off(db: TagDatabase) -> None:
    for length, minimum in [("short", 2), ("long", 4)]:
        request = PresampleRequest(prompt="1girl, scenery", nl_length=length)
        jobs = jobs_of(request, db)
        caption = [j for j in jobs if j.prompt.rstrip().endswith("long:")]
        assert caption and all(caption_floors(j) == [minimum] for j in caption)
        assert all(caption_floors(j) == [] for j in jobs if j not in caption)
    off = PresampleRequest(prompt="1girl, scenery", fill_nl_length=False)
    assert all(caption_floors(j) == [] for j in jobs_of(off, db))


def test_the_users_text_continued_by_a_step_is_floored(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="a cat sitting on a windowsill", nl_length="long")
    first = jobs_of(request, db)[0]
    # The first step continues the user's text under ``long:``: the expanded text
    # the prompt shows must reach four sentences before the line may end.
    assert first.prompt.split("\n")[-1].startswith("long: a cat")
    assert caption_floors(first) == [4]
    assert first.constraint.allowed(first.prompt, [None, "\n", "."]) == [False, False, True]


def test_a_step_stops_retrying_once_retries_add_nothing(db: TagDatabase) -> None:
    from presample.runs import MAX_STALLED

    # Every call answered with nothing: MAX_STALLED calls that add nothing, not the
    # reference's five identical answers or ten retries.
    request = PresampleRequest(prompt="1girl, scenery", tag_length="short", generate_nl=False)
    assert len(jobs_of(request, db)) == MAX_STALLED
