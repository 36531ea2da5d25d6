"""One prompt per text encoder and a FLUX.2 structured prompt, read from a result."""

from __future__ import annotations

from presample.encoders import flux2_prompt, tags_prompt, text_prompt
from presample.formatting import Target
from presample.request import TagSet

TAGS = TagSet(
    special=["1girl"],
    characters=["hatsune miku"],
    general=["long hair", "aqua eyes", "white dress", "standing", "holding microphone",
             "stage", "night", "from below", "depth of field", "upper body"],
    rating=["general"],
)  # fmt: skip


def test_clip_gets_the_tags_and_t5_the_sentences() -> None:
    added = ["standing", "stage", "general"]
    assert tags_prompt(TAGS, added, Target.PLAIN).startswith("1girl, hatsune miku, long hair")
    # The rating the user did not write stays out; one they wrote stays in.
    assert "general" not in tags_prompt(TAGS, added)
    assert tags_prompt(TAGS, ["standing"]).endswith("upper body, general")
    assert tags_prompt(TagSet(general=["ganyu (genshin impact)"]), [], Target.A1111) == (
        "ganyu \\(genshin impact\\)"
    )
    # The user's text as extended; a caption from tags only when they typed no text.
    assert text_prompt("a girl sings. The crowd cheers", "A stock caption.") == (
        "a girl sings. The crowd cheers."
    )
    assert text_prompt("", "A girl sings on a stage.") == "A girl sings on a stage."
    assert text_prompt("", "") == ""


def test_the_flux2_prompt_reads_the_tags_and_invents_nothing() -> None:
    prompt = flux2_prompt(TAGS, "A girl sings on a stage at night. The crowd cheers.")
    assert prompt["scene"] == "A girl sings on a stage at night."
    (subject,) = prompt["subjects"]
    assert subject["description"] == (
        "hatsune miku (a girl), with long hair, aqua eyes, wearing white dress"
    )
    assert subject["action"] == "standing, holding microphone"
    assert prompt["style"] == "anime illustration"
    assert prompt["lighting"] == "night" and prompt["composition"] == "from below, upper body"
    camera = {"angle": "low angle", "depth_of_field": "shallow, background blurred"}
    assert prompt["camera"] == camera
    assert prompt["color_palette"] == ["#00BCD4", "#FFFFFF"]  # aqua eyes, white dress
    # Nothing said, nothing written: no mood, no position, no background here.
    assert {"mood", "background"}.isdisjoint(prompt) and "position" not in subject
    assert flux2_prompt(TagSet(), "") == {}


def test_people_counts_and_photographs() -> None:
    prompt = flux2_prompt(TagSet(special=["2girls", "1boy"], general=["photorealistic"]), "")
    assert [s["description"] for s in prompt["subjects"]] == ["two girls", "a boy"]
    assert prompt["style"] == "photograph" and prompt["scene"] == "two girls, a boy"
