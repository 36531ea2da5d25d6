"""The whole presample path on a tiny real model built in the test.

Every test runs on both engines: transformers on the model folder, llama.cpp
on the same model written as GGUF (where llama-cpp-python is installed).
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from presample import PresampleRequest  # noqa: E402
from presample.categories import Category  # noqa: E402
from presample.engine.sampling import Sampling  # noqa: E402
from presample.prepare import prepare  # noqa: E402
from presample.presampler import Presampler  # noqa: E402
from presample.tagdb import normalize_key  # noqa: E402
from presample.tipo import tipo_input  # noqa: E402

SHORT = Sampling(max_new_tokens=24)


@pytest.fixture(scope="module")
def model_spec(engine: str, tiny_model_dir: Path, request: pytest.FixtureRequest) -> str:
    if engine == "llama.cpp":
        return str(request.getfixturevalue("tiny_gguf"))
    return str(tiny_model_dir)


@pytest.fixture(scope="module")
def presampler(engine: str, model_spec: str) -> Presampler:
    return Presampler(model_spec, backend=engine, sampling=SHORT)


def request(prompt: str, **kw: object) -> PresampleRequest:
    base = {"tag_length": "very_short", "nl_length": "very_short", "seed": 5}
    return PresampleRequest(prompt=prompt, **{**base, **kw})


def test_first_step_reads_exactly_what_show_input_prints(presampler: Presampler) -> None:
    req = request("1girl, hatsune miku, (long hair:1.2), a girl singing on a stage")
    result = presampler(req)
    ready = prepare(req, presampler.db)
    first = ready.steps()[0]
    expected = tipo_input(
        ready.meta(), ready.tag_line(), ready.nl, first.task, first.length, expand=first.expand
    )
    assert result.steps[0].model_input == expected
    assert [s.task for s in result.steps] == [s.task for s in ready.steps()]


def test_user_syntax_survives_and_never_reaches_the_model(presampler: Presampler) -> None:
    result = presampler(
        request(
            "1girl, (smile:1.2), [blush], scenery BREAK red sky, <lora:detail:0.6>, sks style",
            ignored=["sks style"],
        )
    )
    for step in result.steps:
        assert "lora" not in step.model_input and "1.2" not in step.model_input
        assert "sks style" not in step.model_input and "BREAK" not in step.model_input
    # The default output is the prompt as typed, the additions inserted in its first segment.
    assert result.prompt.startswith("1girl, (smile:1.2), [blush], scenery, ")
    assert result.prompt.endswith(" BREAK red sky, <lora:detail:0.6>, sks style")
    # User tags keep their order at the front of their category.
    assert result.tags.general[:3] == ["smile", "blush", "scenery"]
    assert result.tags.special == ["1girl"]
    # The reference's layout by category puts them back too.
    by_category = presampler(
        request(
            "1girl, (smile:1.2), [blush], scenery BREAK red sky, <lora:detail:0.6>, sks style",
            ignored=["sks style"],
            template="both_tag_first",
        )
    )
    assert "(smile:1.2)" in by_category.prompt and "[blush]" in by_category.prompt
    assert by_category.prompt.endswith("<lora:detail:0.6>")
    assert "\nBREAK\nred sky" in by_category.prompt and "sks style" in by_category.prompt


def test_same_seed_same_result_in_any_batch_position(presampler: Presampler) -> None:
    target = request("1girl, scenery, night", seed=42)
    alone = presampler(target)
    others = [
        request(p, seed=s)
        for p, s in (
            ("a cat on a sofa", 1),
            ("2boys", 7),
            ("1girl, long hair, smile, school uniform", 9),
        )
    ]
    batch = presampler.presample_many([others[0], others[1], target, others[2]])
    assert batch[2] == alone.model_copy(
        update={"timings": batch[2].timings, "steps": batch[2].steps}
    )
    assert [s.model_output for s in batch[2].steps] == [s.model_output for s in alone.steps]
    assert presampler(target).prompt == alone.prompt


def test_global_random_state_is_untouched(presampler: Presampler) -> None:
    random.seed(1)
    torch.manual_seed(1)
    py_state, torch_state = random.getstate(), torch.get_rng_state()
    presampler(request("1girl, scenery", seed=3))
    assert random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_random_seed_is_reported_and_reproduces(presampler: Presampler) -> None:
    first = presampler(request("1girl, scenery", seed=-1))
    assert first.seed >= 0
    again = presampler(request("1girl, scenery", seed=first.seed))
    assert again.prompt == first.prompt


def test_same_output_in_a_fresh_process(
    presampler: Presampler, engine: str, model_spec: str
) -> None:
    here = presampler(request("1girl, scenery", seed=11)).prompt
    code = (
        "from presample import PresampleRequest; from presample.presampler import Presampler;"
        "from presample.engine.sampling import Sampling;"
        f"p = Presampler({model_spec!r}, backend={engine!r}, sampling=Sampling(max_new_tokens=24));"
        "r = p(PresampleRequest(prompt='1girl, scenery', tag_length='very_short',"
        " nl_length='very_short', seed=11)); print(r.prompt, end='')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == here


def test_retries_feed_the_result_back_until_the_minimum(presampler: Presampler) -> None:
    # Any tags: a random tiny model writes no real ones, so nothing would come back.
    result = presampler(
        request("1girl", tag_length="very_long", generate_nl=False, known_tags_only=False)
    )
    step = result.steps[0]
    assert step.attempts > 1  # a random tiny model cannot write 54 tags in 24 tokens
    assert not step.reached_target  # and the result says so
    # The last attempt's input carries what earlier attempts produced.
    assert step.model_input == "rating: general\ntarget: <|very_long|>\ntag: 1girl"
    assert step.last_input.startswith(step.model_input) and len(step.last_input) > len(
        step.model_input
    )


def test_banned_tags_never_appear_and_are_steered_away(presampler: Presampler) -> None:
    req = request("1girl, scenery", seed=21, generate_nl=False, tag_length="short")
    free = presampler(req)
    new = [t for t in free.tags.general if t not in ("scenery",)]
    assert new, "the tiny model should add some tags"
    banned = new[0]
    ruled = presampler(
        PresampleRequest.model_validate(
            {**req.model_dump(), "ban": [{"kind": "exact", "pattern": banned}]}
        )
    )
    assert banned not in ruled.tags.all_tags()
    assert banned not in ruled.prompt.split(", ")
    # Steering: the raw model output never completes the banned tag either.
    for step in ruled.steps:
        completed = [t.strip() for t in (step.last_input + step.model_output).split(",")]
        assert normalize_key(banned) not in {normalize_key(t) for t in completed[:-1]}


def test_regex_and_category_bans(presampler: Presampler) -> None:
    req = request(
        "1girl, hatsune miku, scenery",
        seed=4,
        ban=[{"kind": "regex", "pattern": "^s"}, {"kind": "category", "pattern": "characters"}],
    )
    result = presampler(req)
    new = [t for t in result.tags.all_tags() if t not in ("1girl", "hatsune miku", "scenery")]
    assert not [t for t in new if t.lower().startswith("s")]
    # The user's own tags are never removed by a ban.
    assert "hatsune miku" in result.tags.characters and "scenery" in result.tags.general


def test_keep_order_and_length_truncation(presampler: Presampler) -> None:
    result = presampler(
        request(
            "1girl, scenery", tag_length="very_short", shuffle_new_tags=False, generate_nl=False
        )
    )
    assert len(result.tags.general) <= 18


def test_bad_requests_fail_alone_in_a_batch(presampler: Presampler) -> None:
    good = request("1girl", seed=1)
    results = presampler.presample_many([good, {"prompt": "1girl, (smile"}, good])
    assert isinstance(results[1], ValueError) and "unbalanced" in str(results[1])
    assert results[0] == results[2].model_copy(
        update={"timings": results[0].timings, "steps": results[0].steps}
    )


def test_streaming_gives_each_step_then_the_result(presampler: Presampler) -> None:
    from presample.request import PresampleResult, StepResult

    req = request("1girl, scenery", seed=8)
    events = list(presampler.stream(req))
    assert all(isinstance(e, StepResult) for e in events[:-1])
    assert isinstance(events[-1], PresampleResult)
    assert events[:-1] == events[-1].steps
    assert events[-1].prompt == presampler(req).prompt


def test_async_api(presampler: Presampler) -> None:
    import asyncio

    req = request("1girl, scenery", seed=8)
    assert asyncio.run(presampler.apresample(req)).prompt == presampler(req).prompt


def test_no_names_are_invented_for_a_plain_prompt(tiny_model_dir: Path, db) -> None:
    # The tiny random model writes any known tag, artists and characters among them.
    sampler = Presampler(str(tiny_model_dir), backend="transformers", dtype="float32",
                         sampling=Sampling(max_new_tokens=48))  # fmt: skip
    names = (Category.ARTIST, Category.CHARACTERS, Category.COPYRIGHTS)
    for seed in range(2):
        request = PresampleRequest(prompt="1girl, long hair, smile", seed=seed, new_names="auto",
                                   tag_length="long", nl_length="very_short")  # fmt: skip
        result = sampler(request)
        added = [t for c in names for t in getattr(result.tags, c.value)]
        assert added == [], (seed, added)
        assert not any(db.category_of(t) in names for t in result.tags.general)


@pytest.mark.parametrize(
    ("prompt", "strength", "leans"),
    [("1girl, wings, halo", 2.0, True), ("1girl, wings, halo", 0.0, False),
     ("a cat sitting on a windowsill", 2.0, False)],  # nothing to condition on
)  # fmt: skip
def test_the_tag_step_carries_the_prior_the_request_asks_for(
    db, prompt: str, strength: float, leans: bool
) -> None:
    from presample.runs import RunOptions, tipo_run
    from presample.tag_prior import CooccurrenceTable, TagPrior

    table = CooccurrenceTable()
    request = PresampleRequest(prompt=prompt, tag_prior=strength, seed=1)
    prepared = prepare(request, db)
    assert prepared.steps()[0].task.output == "tag"  # the first step writes the tag line
    job = next(tipo_run(prepared, db, RunOptions(Sampling(), seed=1), table))
    if not leans:
        assert job.boost is None
        return
    assert isinstance(job.boost, TagPrior) and job.boost.strength == strength
    weights = job.boost.weights
    assert not {"1girl", "wings", "halo"} & set(weights)
    assert weights["feathers"] > weights.get("school uniform", 0.0)
    # An unrated request is general: the prior holds nothing its rating keeps out.
    assert "nude" not in weights and "cleavage" not in weights


def test_a_leaned_run_is_the_same_in_any_batch_position(tiny_model_dir: Path) -> None:
    sampler = Presampler(str(tiny_model_dir), backend="transformers",
                         sampling=Sampling(max_new_tokens=32))  # fmt: skip
    target = PresampleRequest(prompt="1girl, wings, smile", seed=4, tag_prior=3.0,
                              tag_length="very_short", nl_length="very_short")  # fmt: skip
    alone = sampler(target)
    other = PresampleRequest(prompt="2boys, night", seed=1, tag_prior=1.0)
    batch = sampler.presample_many([other, target, other.model_copy(update={"tag_prior": 0})])
    assert batch[1].prompt == alone.prompt
