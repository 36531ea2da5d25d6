"""Omost canvases: read an LLM's answer safely, lay it out, and encode it token-safely.

An Omost model answers with Python code against a virtual ``Canvas``: a global
description plus regions placed on a 90 x 90 grid. This package reads that
code without running it (``parse``), keeps the canvas as validated plain data
(``model``), turns it into boxes, masks, a colour picture and one condition
per layer (``layout``), and packs each condition's sentences into 77-token CLIP
passes (``tokens``)::

    from presample.canvas import parse_answer, conditions, composition, bag_canvas
    parsed = parse_answer(answer_text)            # strict; lenient=True to salvage
    layers = conditions(parsed.canvas)            # global first, then far to near
    mask = layers[1].mask(128, 128)               # numpy bool, nearest-exact
    bags = bag_canvas(parsed.canvas)              # needs presample[canvas]
    turn = CanvasChat(OpenAIChat(url)).send("a cat on a sofa")   # the chat (httpx)

Importing this package needs only pydantic; numpy, Pillow and the CLIP
vocabulary load when a function needs them.
"""

from __future__ import annotations

from .chat import (
    GENERIC_SYSTEM_PROMPT,
    SYSTEM_PROMPT,
    CanvasChat,
    ChatError,
    ChatSettings,
    ChatTurn,
    LocalChat,
    OpenAIChat,
)
from .code import canvas_answer, canvas_code
from .colors import COLORS
from .layout import (
    FULL,
    Box,
    Condition,
    box_mask,
    composition,
    conditions,
    layer_order,
    region_box,
    save_png,
)
from .model import (
    GRID,
    Area,
    Canvas,
    GlobalDescription,
    Location,
    Offset,
    Region,
    closest_choice,
    sentence,
)
from .parse import CanvasParseError, ParsedAnswer, Problem, parse_answer, parse_canvas
from .tokens import (
    Bag,
    EncodedCondition,
    LengthWarning,
    MissingTokenizer,
    PromptNode,
    bag_canvas,
    bag_condition,
    check_lengths,
    chunk77,
    clip_encode,
    count_tokens,
    flat_prompt,
    greedy_bags,
    prompt_tree,
)

__all__ = [
    "COLORS",
    "FULL",
    "GENERIC_SYSTEM_PROMPT",
    "GRID",
    "SYSTEM_PROMPT",
    "Area",
    "Bag",
    "Box",
    "Canvas",
    "CanvasChat",
    "CanvasParseError",
    "ChatError",
    "ChatSettings",
    "ChatTurn",
    "Condition",
    "EncodedCondition",
    "GlobalDescription",
    "LengthWarning",
    "LocalChat",
    "Location",
    "MissingTokenizer",
    "Offset",
    "OpenAIChat",
    "ParsedAnswer",
    "Problem",
    "PromptNode",
    "Region",
    "bag_canvas",
    "bag_condition",
    "box_mask",
    "canvas_answer",
    "canvas_code",
    "check_lengths",
    "chunk77",
    "clip_encode",
    "closest_choice",
    "composition",
    "conditions",
    "count_tokens",
    "flat_prompt",
    "greedy_bags",
    "layer_order",
    "parse_answer",
    "parse_canvas",
    "prompt_tree",
    "region_box",
    "save_png",
    "sentence",
]
