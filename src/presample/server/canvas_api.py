"""Omost canvases over HTTP: parse an answer, draw its layout, cut its masks.

The answer is only read (``presample.canvas.parse``), never executed. Drawing
runs in a worker thread so a large picture does not stall other requests.
"""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response

from ..canvas.parse import CanvasParseError, ParsedAnswer, parse_answer
from .api import ERRORS
from .schemas import (
    CanvasAnswer,
    CanvasCall,
    CanvasImageCall,
    CanvasMaskCall,
    MaskAnswer,
    MaskLayer,
)
from .state import ServerState, get_state

router = APIRouter(tags=["canvas"])
State = Annotated[ServerState, Depends(get_state)]


def _parse(call: CanvasCall) -> ParsedAnswer:
    try:
        return parse_answer(call.answer, lenient=call.lenient)
    except CanvasParseError as exc:
        raise HTTPException(
            422,
            {
                "message": f"answer: {exc}",
                "problems": [p.to_dict() for p in exc.problems],
            },
        ) from None


def _check_size(width: int, height: int, limit: int) -> None:
    if width > limit or height > limit:
        raise HTTPException(422, f"width, height: each at most {limit} pixels on this server")


def _png(image: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@router.post(
    "/api/canvas/parse",
    response_model=CanvasAnswer,
    responses=ERRORS,
    summary="Read an Omost answer into a canvas and its layers (never executed)",
)
async def canvas_parse(call: CanvasCall) -> CanvasAnswer:
    from ..canvas.layout import conditions

    parsed = await asyncio.to_thread(_parse, call)
    canvas = parsed.canvas
    return CanvasAnswer(
        canvas=parsed.canvas.to_dict(),
        layers=[
            {
                **c.to_dict(),
                "rgb": list(
                    canvas.regions[c.region].rgb
                    if c.region is not None
                    else canvas.global_description.rgb
                ),
            }
            for c in conditions(canvas)
        ],
        region_lines=list(parsed.region_lines),
        repairs=[r.to_dict() for r in parsed.repairs],
        problems=[p.to_dict() for p in parsed.problems],
    )


@router.post(
    "/api/canvas/composition",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"image/png": {}}, "description": "PNG picture"}},
    summary="The colour composition, each region outlined and labelled (PNG)",
)
async def canvas_composition(call: CanvasImageCall, state: State) -> Response:
    _check_size(call.width, call.height, state.settings.limits.max_image_side)

    def draw() -> bytes:
        from PIL import Image

        from ..canvas.draw import layout_image
        from ..canvas.layout import composition, resize_nearest_exact

        parsed = _parse(call)
        if call.labels:
            return _png(layout_image(parsed.canvas, call.width, call.height))
        pixels = resize_nearest_exact(composition(parsed.canvas), call.width, call.height)
        return _png(Image.fromarray(pixels))

    return Response(await asyncio.to_thread(draw), media_type="image/png")


@router.post(
    "/api/canvas/masks",
    response_model=MaskAnswer,
    responses=ERRORS,
    summary="One mask per layer (global first, then far to near) and the composition",
)
async def canvas_masks(call: CanvasMaskCall, state: State) -> MaskAnswer:
    _check_size(call.width, call.height, state.settings.limits.max_mask_side)

    def cut() -> MaskAnswer:
        import numpy as np
        from PIL import Image

        from ..canvas.layout import composition, conditions, resize_nearest_exact

        parsed = _parse(call)
        layers = []
        for layer in conditions(parsed.canvas):
            mask = layer.mask(call.width, call.height).astype(np.uint8) * 255
            layers.append(
                MaskLayer(
                    layer={**layer.to_dict(), "box_normalised": list(layer.box.normalised())},
                    mask_png=base64.b64encode(_png(Image.fromarray(mask))).decode(),
                )
            )
        pixels = resize_nearest_exact(composition(parsed.canvas), call.width, call.height)
        picture = base64.b64encode(_png(Image.fromarray(np.ascontiguousarray(pixels)))).decode()
        return MaskAnswer(
            width=call.width, height=call.height, layers=layers, composition_png=picture
        )

    return await asyncio.to_thread(cut)
