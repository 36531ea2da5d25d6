"""The plug-ins' length menus: "model default" defers to the model card."""

from __future__ import annotations

from presample.integrations.a1111 import ScriptOptions
from presample.integrations.common import LENGTHS, MODEL_DEFAULT
from presample.integrations.presampling import build_request
from presample.tipo import Length


def test_model_default_leaves_the_lengths_to_the_card() -> None:
    assert LENGTHS[0] == MODEL_DEFAULT and ScriptOptions().tag_length == MODEL_DEFAULT
    request = build_request(prompt="1girl")
    # Unset fields are what Presampler.with_model_defaults fills from presample.json.
    assert not {"tag_length", "nl_length"} & request.model_fields_set
    chosen = build_request(prompt="1girl", tag_length="very short", nl_length="long")
    assert (chosen.tag_length, chosen.nl_length) == (Length.VERY_SHORT, Length.LONG)
    assert {"tag_length", "nl_length"} <= chosen.model_fields_set
