"""Which model calls of a TIPO run carry the tag line's length floor."""

from __future__ import annotations

from presample import PresampleRequest
from presample.engine.backend import Generation, GenerationJob
from presample.engine.pipeline import RunOptions, tipo_run
from presample.engine.sampling import Sampling
from presample.prepare import prepare
from presample.tag_floor import AllOf, TagFloor
from presample.tagdb import TagDatabase


def jobs_of(request: PresampleRequest, db: TagDatabase) -> list[GenerationJob]:
    """Drive a run to its end, answering every call with an empty continuation."""
    run = tipo_run(prepare(request, db), db, RunOptions(sampling=Sampling(), seed=1))
    jobs = [next(run)]
    try:
        while True:
            jobs.append(run.send(Generation(text="", prompt_tokens=1, new_tokens=0, finish="eos")))
    except StopIteration:
        return jobs


def floors(job: GenerationJob) -> list[TagFloor]:
    c = job.constraint
    parts = c.parts if isinstance(c, AllOf) else () if c is None else (c,)
    return [p for p in parts if isinstance(p, TagFloor)]


def test_tag_steps_carry_the_requested_minimum(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="1girl, scenery", tag_length="short", nl_length="short")
    jobs = jobs_of(request, db)
    tag_jobs = [j for j in jobs if j.prompt.rstrip().split("\n")[-1].startswith("tag:")]
    caption_jobs = [j for j in jobs if j not in tag_jobs]
    assert tag_jobs and caption_jobs
    assert all(floors(j) == [TagFloor(18)] for j in tag_jobs)
    assert all(floors(j) == [] for j in caption_jobs)


def test_bans_and_floor_apply_together(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="1girl", tag_length="very_short", ban=[{"pattern": "hat"}])
    first = jobs_of(request, db)[0]
    assert isinstance(first.constraint, AllOf)
    assert floors(first) == [TagFloor(6)]
    assert first.constraint.allowed(first.prompt + ", hat", [","]) == [False]


def test_off_is_the_reference_behaviour(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="1girl, scenery", fill_tag_length=False)
    assert all(floors(j) == [] for j in jobs_of(request, db))
