"""The refine loop on the shipped default model: what a user of `presample refine` relies on."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")

from pydantic import ValidationError

from presample import Presampler, RefineOptions, RefineSession
from presample.insertion import anchors, insert
from presample.refine import RefineError
from presample.refine.extend import continued_tags, continued_words
from presample.syntax import parse_prompt

USER = "1girl, (smile:1.2), [blush], scenery <lora:detail:0.6> BREAK red sky"


@pytest.fixture(scope="module")
def presampler() -> Presampler:
    return Presampler()


def test_candidates_extend_and_never_drop_what_the_user_wrote(presampler: Presampler) -> None:
    session = RefineSession(presampler, USER, RefineOptions(seed=7))
    candidates = session.propose()
    assert 1 <= len(candidates) <= 3
    assert len({tuple(c.added) for c in candidates}) == len(candidates)  # deduplicated
    assert len({c.seed for c in candidates}) == len(candidates)
    for c in candidates:
        assert c.added and c.prompt != USER
        # Additions are inserted; every byte the user typed survives in order.
        rest = c.prompt
        for piece in ("1girl", "(smile:1.2)", "[blush]", "scenery", "<lora:detail:0.6>",
                      "BREAK", "red sky"):  # fmt: skip
            assert piece in rest, (piece, c.prompt)
            rest = rest[rest.index(piece) + len(piece) :]
        for tag in c.added:
            assert "<" not in tag and "BREAK" not in tag  # model output never becomes syntax


def test_pick_undo_and_history(presampler: Presampler) -> None:
    session = RefineSession(presampler, "1girl, scenery", RefineOptions(seed=3))
    first = session.propose()
    chosen = session.pick(0)
    assert chosen == first[0].prompt == session.prompt
    assert session.round == 1 and session.history == ["1girl, scenery", chosen]
    second = session.propose()
    assert all(c.prompt.startswith("1girl, scenery") for c in second)
    assert session.undo() == "1girl, scenery"
    assert session.propose() == first  # the earlier round comes back unchanged
    with pytest.raises(RefineError, match="nothing to undo"):
        session.undo()
    with pytest.raises(RefineError, match="no candidate 9"):
        session.pick(9)


def test_redraw_gives_other_candidates(presampler: Presampler) -> None:
    session = RefineSession(presampler, "1girl, scenery", RefineOptions(seed=3))
    first = session.propose()
    again = session.redraw()
    assert {c.seed for c in first}.isdisjoint({c.seed for c in again})


def test_state_round_trip_continues_the_same_session(presampler: Presampler) -> None:
    session = RefineSession(presampler, "a cat", RefineOptions(seed=11))
    session.propose()
    session.pick(0)
    upcoming = session.propose()
    saved = session.state().model_dump(mode="json")
    restored = RefineSession.from_state(presampler, saved)
    assert restored.prompt == session.prompt and restored.seed == 11
    assert restored.propose() == upcoming
    with pytest.raises(RefineError, match="invalid refine state"):
        RefineSession.from_state(presampler, {**saved, "round": 5})


def test_one_shot_stays_within_its_token_budget(presampler: Presampler) -> None:
    options = RefineOptions(seed=5, strategy="oneshot", oneshot_tokens=12)
    for c in RefineSession(presampler, "1girl, scenery", options).propose():
        assert 0 < c.tokens <= 12


def test_random_seed_is_reported_and_reproduces(presampler: Presampler) -> None:
    session = RefineSession(presampler, "1girl", RefineOptions(seed=-1))
    assert session.seed >= 0
    again = RefineSession(presampler, "1girl", RefineOptions(seed=session.seed))
    assert again.propose() == session.propose()


def test_same_candidates_in_a_fresh_process(presampler: Presampler) -> None:
    here = [c.prompt for c in RefineSession(presampler, "1girl", RefineOptions(seed=21)).propose()]
    code = (
        "from presample import Presampler, RefineSession, RefineOptions;"
        "s = RefineSession(Presampler(), '1girl', RefineOptions(seed=21));"
        "print('\\n'.join(c.prompt for c in s.propose()), end='')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n") == here


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("   ", "the prompt is empty"), ("<lora:x:1>", "nothing to refine"), ("a\x00b", "NUL")],
)
def test_bad_prompts_are_one_clear_error(presampler: Presampler, prompt: str, message: str):
    with pytest.raises(RefineError, match=message):
        RefineSession(presampler, prompt)


def test_bad_options_name_the_field() -> None:
    with pytest.raises(ValidationError, match="candidates"):
        RefineOptions(candidates=0)
    with pytest.raises(ValidationError, match="temperature"):
        RefineOptions(temperature=1e-300)
    with pytest.raises(ValidationError, match="unknown"):
        RefineOptions(unknown=1)  # type: ignore[call-arg]


def test_model_text_is_cut_at_whole_tags_and_words() -> None:
    # A generation stopped by the token limit may end mid-tag / mid-word.
    assert continued_tags(" long hair, smile, blue ey", finished=False) == ["long hair", "smile"]
    assert continued_tags(" long hair, smile\nlong: x", finished=False) == ["long hair", "smile"]
    words = continued_words(" on a sunny windowsi", finished=False)
    assert words == [" on", " a", " sunny"]
    # A fragment glued to the user's last word would change it: dropped.
    assert continued_words("s near a window", finished=True)[0] == " near"


def test_additions_are_never_malformed() -> None:
    # No mark right after a mark ("long,, curly").
    assert "".join(continued_words(" with, long,, curly", finished=True)) == " with, long, curly"
    assert "".join(continued_words(", fluffy", finished=True)) == ", fluffy"
    # Text inserted before the user's own comma does not end in a mark of its own.
    prompt = "a cat sleeping on a warm sofa, 1girl"
    where = anchors(prompt, parse_prompt(prompt))
    assert insert(prompt, where, text=" with a fluffy tail.") == (
        "a cat sleeping on a warm sofa with a fluffy tail, 1girl"
    )
    plain = "a cat sleeping on a warm sofa"
    assert insert(plain, anchors(plain, parse_prompt(plain)), text=" at noon.") == (
        "a cat sleeping on a warm sofa at noon."
    )
