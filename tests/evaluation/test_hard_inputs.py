"""The hard-inputs checks on hand-made results."""

from __future__ import annotations

from presample.evaluation.hard_inputs import HARD_INPUTS, hard_input_metrics, hard_requests
from presample.request import PresampleRequest, PresampleResult, TagSet


def answer(request: PresampleRequest, **tags: list[str]) -> PresampleResult:
    added = ", ".join(t for values in tags.values() for t in values)
    prompt = ", ".join(p for p in (request.prompt, added) if p)
    return PresampleResult(prompt=prompt, tags=TagSet(**tags))


def test_every_input_is_asked_once_per_seed_with_the_cards_lengths() -> None:
    requests = hard_requests((0, 1))
    assert len(requests) == 2 * len(HARD_INPUTS)
    assert [r.seed for r in requests[:2]] == [0, 1]
    assert all("tag_length" not in r.model_fields_set for r in requests)


def test_good_answers_pass_every_check() -> None:
    requests = hard_requests((0,))
    results = [answer(r, general=["smile", "outdoors"]) for r in requests]
    numbers, samples = hard_input_metrics(results, (0,))
    for key in ("kept", "no_names", "consistent", "no_repeats", "answered"):
        assert numbers[f"hard_{key}"] == 1.0, key
    assert len(samples) == len(HARD_INPUTS)


def test_names_contradictions_lost_words_and_errors_are_caught() -> None:
    requests = hard_requests((0,))
    results: list[PresampleResult | Exception] = [
        answer(r, general=["smile", "outdoors"]) for r in requests
    ]
    results[0] = answer(requests[0], general=["day", "night"], artist=["wlop"])
    results[1] = PresampleResult(prompt="solo", tags=TagSet(general=["solo"]))  # "1girl" lost
    results[2] = RuntimeError("boom")
    numbers, samples = hard_input_metrics(results, (0,))
    runs = len(HARD_INPUTS)
    assert numbers["hard_no_names"] == (runs - 2) / runs
    assert numbers["hard_consistent"] == (runs - 2) / runs
    assert numbers["hard_kept"] == (runs - 2) / runs
    assert samples[0]["names"] == ["wlop"] and samples[0]["contradicting"] == ["day", "night"]
    assert samples[2]["error"] == "boom"
