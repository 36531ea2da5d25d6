"""The model shipped in the package: loads with no network and no configuration."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from presample import Presampler, PresampleRequest
from presample.registry import default_model_dir, resolve

pytestmark = pytest.mark.skipif(
    not (default_model_dir() / "config.json").is_file(), reason="no default model in this copy"
)


def test_default_model_needs_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = resolve(None)
    assert (source.kind, source.layout) == ("folder", "tipo")
    with Presampler() as p:
        result = p(PresampleRequest(prompt="1girl, scenery", seed=1, tag_length="short"))
    assert result.tags.special[0] == "1girl" and "scenery" in result.tags.general
    assert len(result.tags.general) > 2  # it added tags
    assert result.prompt.startswith("1girl")


def test_default_model_card_names_its_data() -> None:
    card = (default_model_dir() / "README.md").read_text(encoding="utf-8")
    assert "civitai" in card.lower() and "licen" in card.lower()


@pytest.mark.parametrize("prompt", ["1girl, scenery", "a cat sitting on a windowsill"])
def test_default_model_captions_reach_the_requested_sentences(prompt: str) -> None:
    from presample.lengths import sentence_count

    # The two prompts the project promises a first-time user; "short" asks for
    # two to four sentences, and the caption floor keeps a finished first
    # sentence from ending the caption.
    with Presampler() as p:
        for seed in (0, 1):
            result = p(PresampleRequest(prompt=prompt, seed=seed, nl_length="short"))
            caption = result.generated or result.extended
            assert sentence_count(caption) >= 2, caption
            assert all(step.reached_target for step in result.steps if step.task != "tag")
