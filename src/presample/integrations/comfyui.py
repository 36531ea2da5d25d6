"""ComfyUI custom nodes (the V1 node API), kept here so they are tested without ComfyUI.

The folder ``integrations/comfyui`` dropped into ``ComfyUI/custom_nodes`` only
re-exports ``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS`` from this
module. Models are looked for in ``ComfyUI/models/presample`` and in the
reference extension's ``ComfyUI/models/kgen`` (its ``<Repo>_<file>.gguf``
downloads load as they are); ComfyUI's ``folder_paths`` tells where those are,
and outside ComfyUI ``$PRESAMPLE_COMFYUI_MODELS_DIR`` names the models root.

Loaded models stay in ``CACHE``, one per (model, device, dtype), least recently
used first out beyond ``$PRESAMPLE_CACHE_SIZE`` (default 1) models. A fixed seed
does not re-execute a node (same inputs, same prompt); seed -1 draws a new seed
every run and so always re-executes. torch is imported only inside the nodes
that build tensors.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..canvas.exports import GLOBAL_WEIGHT, REGION_WEIGHT, comfyui_conditioning
from ..canvas.layout import FULL, Condition, composition, resize_nearest_exact
from ..canvas.model import Canvas, sentence
from ..canvas.parse import parse_answer
from ..record import PNG_KEY, make_record
from ..tipo import Task
from .common import (
    DEVICES,
    DTYPES,
    LENGTHS,
    MODEL_DEFAULT,
    SAMPLING_MODES,
    TEMPLATE_CHOICES,
    ModelCache,
    model_choices,
)
from .presampling import (
    Outcome,
    build_request,
    presample,
    sampling_value,
    template_value,
    texts,
)

CATEGORY = "presample"
MODELS_ENV = "PRESAMPLE_COMFYUI_MODELS_DIR"
FOLDER_NAME = "presample"
REFERENCE_FOLDER = "kgen"
RESULT = "PRESAMPLE_RESULT"
CANVAS = "PRESAMPLE_CANVAS"


def _cache_size() -> int:
    try:
        return max(1, int(os.environ.get("PRESAMPLE_CACHE_SIZE", "1")))
    except ValueError:
        return 1


CACHE = ModelCache(max_models=_cache_size())
"""The node module's models: one ComfyUI process, one cache of explicit size."""


# --- model folders ------------------------------------------------------------------------


def _folder_paths() -> Any | None:
    try:
        import folder_paths  # ComfyUI's module; absent outside ComfyUI
    except ImportError:
        return None
    return folder_paths


def register_model_folder() -> None:
    """Tell ComfyUI about ``models/presample`` (so ``extra_model_paths.yaml`` can add more)."""
    fp = _folder_paths()
    if fp is None:
        return
    folder = os.path.join(fp.models_dir, FOLDER_NAME)
    known = getattr(fp, "folder_names_and_paths", {})
    if FOLDER_NAME not in known:
        fp.add_model_folder_path(FOLDER_NAME, folder)


def model_dirs() -> list[Path]:
    """Where models are listed from: ComfyUI's presample folders, then ``kgen``."""
    fp = _folder_paths()
    dirs: list[Path] = []
    if fp is not None:
        try:
            dirs += [Path(p) for p in fp.get_folder_paths(FOLDER_NAME)]
        except (KeyError, AttributeError):
            dirs.append(Path(fp.models_dir) / FOLDER_NAME)
        dirs.append(Path(fp.models_dir) / REFERENCE_FOLDER)
    else:
        root = os.environ.get(MODELS_ENV)
        if root:
            dirs += [Path(root) / FOLDER_NAME, Path(root) / REFERENCE_FOLDER]
    return list(dict.fromkeys(dirs))


# --- shared inputs ------------------------------------------------------------------------

TARGETS = ["comfyui", "a1111", "plain"]


def _text(default: str = "", placeholder: str = "") -> tuple[str, dict[str, Any]]:
    options: dict[str, Any] = {"default": default, "multiline": True}
    if placeholder:
        options["placeholder"] = placeholder
    return ("STRING", options)


def _size(default: int = 1024) -> tuple[str, dict[str, Any]]:
    return ("INT", {"default": default, "min": 64, "max": 16384, "step": 8})


def _model_inputs() -> dict[str, Any]:
    choices = model_choices(model_dirs())
    return {"model": (choices, {"default": choices[0]})}


def _request_inputs() -> dict[str, Any]:
    return {
        "tags": _text(placeholder="1girl, (smile:1.2), scenery, <lora:detail:0.6>"),
        "nl_prompt": _text(placeholder="a girl singing on a stage"),
        **_model_inputs(),
        "tag_length": (LENGTHS, {"default": MODEL_DEFAULT}),
        "nl_length": (LENGTHS, {"default": MODEL_DEFAULT}),
    }


def _tail_inputs() -> dict[str, Any]:
    return {
        "ban_tags": _text(placeholder="red hair, official.*, category:artist, group:hair"),
        "ignored_tags": _text(placeholder="LoRA trigger words, kept away from the model"),
        "width": _size(),
        "height": _size(),
        "seed": ("INT", SEED_OPTIONS),
        "sampling": (SAMPLING_MODES, {"default": "model default"}),
        "temperature": ("FLOAT", {"default": 0.35, "min": 0.0, "max": 10.0, "step": 0.01}),
        "top_p": ("FLOAT", {"default": 0.95, "min": 0.01, "max": 1.0, "step": 0.01}),
        "top_k": ("INT", {"default": 60, "min": 0, "max": 100000}),
        "min_p": ("FLOAT", {"default": 0.1, "min": 0.0, "max": 0.99, "step": 0.01}),
        "repetition_penalty": ("FLOAT", {"default": 1.17, "min": 0.5, "max": 3.0, "step": 0.01}),
        "max_new_tokens": ("INT", {"default": 512, "min": 1, "max": 4096}),
        "device": (list(DEVICES), {"default": "auto"}),
        "dtype": (list(DTYPES), {"default": "auto"}),
    }


JS_SAFE_SEED = 2**53 - 1
"""The largest seed a browser keeps exact: the front end stores widget values as doubles."""
SEED_OPTIONS: dict[str, Any] = {
    "default": 0,
    "min": -1,
    "max": JS_SAFE_SEED,
    "control_after_generate": True,
    "tooltip": "-1 draws a new seed every run (and always re-runs the node)",
}


def _optional_inputs() -> dict[str, Any]:
    return {
        "target": (TARGETS, {"default": "comfyui"}),
        "gen_meta": ("BOOLEAN", {"default": False}),
        "sfw": ("BOOLEAN", {"default": True}),
    }


def _seed_changed(**kwargs: Any) -> str | float:
    """ComfyUI re-executes a node when this value differs from the last run's.

    NaN never equals itself, so seed -1 (a new random seed each run) always
    re-executes; a fixed seed gives a stable digest of the inputs, so the node
    runs again only when an input changes.
    """
    if int(kwargs.get("seed", 0)) == -1:
        return math.nan
    blob = json.dumps(kwargs, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _run(kwargs: dict[str, Any], *, task: Task | None = None, expand: bool = True) -> Outcome:
    template = template_value(kwargs.get("template", "both_tag_first"),
                              kwargs.get("custom_template", ""))  # fmt: skip
    request = build_request(
        prompt=kwargs["tags"],
        nl_prompt=kwargs.get("nl_prompt", ""),
        tag_length=kwargs["tag_length"],
        nl_length=kwargs["nl_length"],
        template=template,
        ban=kwargs.get("ban_tags", ""),
        ignored=kwargs.get("ignored_tags", ""),
        seed=kwargs["seed"],
        width=kwargs.get("width"),
        height=kwargs.get("height"),
        target=kwargs.get("target", "comfyui"),
        gen_meta=bool(kwargs.get("gen_meta", False)),
        sfw=bool(kwargs.get("sfw", True)),
    )
    sampling = sampling_value(
        kwargs.get("sampling", "model default"),
        temperature=kwargs.get("temperature", 0.35),
        top_p=kwargs.get("top_p", 0.95),
        top_k=kwargs.get("top_k", 60),
        min_p=kwargs.get("min_p", 0.1),
        repetition_penalty=kwargs.get("repetition_penalty", 1.17),
        max_new_tokens=kwargs.get("max_new_tokens", 512),
    )
    return presample(
        CACHE,
        request,
        model=kwargs["model"],
        models_dirs=model_dirs(),
        device=kwargs.get("device", "auto"),
        dtype=kwargs.get("dtype", "auto"),
        sampling=sampling,
        task=task,
        expand=expand,
    )


def keep_record(extra_pnginfo: Any, outcome: Outcome) -> None:
    """Add the run's record (``presample/record.py``) to the metadata SaveImage writes
    into the PNG, so ``presample show IMAGE`` can make the prompt again. (A node
    ComfyUI does not run again, its inputs unchanged, adds no record to later images;
    the workflow in the image still holds its inputs.)"""
    if isinstance(extra_pnginfo, dict):
        record = make_record(outcome.request, outcome.result, outcome.model_hash)
        records = extra_pnginfo.setdefault(PNG_KEY, [])
        if isinstance(records, list):
            records.append(record.model_dump(mode="json"))


# --- presampling nodes --------------------------------------------------------------------


class PresampleNode:
    """Tags and/or a sentence in, the detailed prompt out (the reference's "TIPO" node)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                **_request_inputs(),
                "template": (TEMPLATE_CHOICES, {"default": "both_tag_first"}),
                "custom_template": _text(placeholder="<|general|>, <|extended|>."),
                **_tail_inputs(),
            },
            "optional": _optional_inputs(),
            # Where SaveImage finds what to write into the PNG: the record goes there.
            "hidden": {"extra_pnginfo": "EXTRA_PNGINFO"},
        }

    # The reference's four outputs first; the per-encoder prompts last, so workflows
    # linked to the earlier outputs keep their links.
    RETURN_TYPES = ("STRING", "STRING", "STRING", "STRING", "STRING", RESULT,
                    "STRING", "STRING", "STRING")  # fmt: skip
    RETURN_NAMES = ("prompt", "user_prompt", "unformatted_prompt", "unformatted_user_prompt",
                    "result_json", "result", "clip_prompt", "t5_prompt", "flux2_json")  # fmt: skip
    OUTPUT_TOOLTIPS = (
        "the detailed prompt", "your prompt, formatted the same way",
        "the detailed prompt without the template", "your prompt without the template",
        "the whole result as JSON", "the result, for the Format node",
        "the tags alone: for CLIP text encoders (SD 1.5, SDXL, the CLIP half of SD3/FLUX.1)",
        "the sentences alone: for T5/LLM text encoders (SD3, FLUX)",
        "a FLUX.2 structured JSON prompt",
    )  # fmt: skip
    FUNCTION = "execute"
    CATEGORY = CATEGORY
    DESCRIPTION = "Expand a few tags or a short sentence into a detailed prompt."

    @classmethod
    def IS_CHANGED(cls, **kwargs: Any) -> str | float:
        return _seed_changed(**kwargs)

    def execute(self, **kwargs: Any) -> tuple[Any, ...]:
        outcome = _run(kwargs)
        out = texts(outcome)
        result = outcome.result
        keep_record(kwargs.get("extra_pnginfo"), outcome)
        return (out.prompt, out.user_prompt, out.unformatted_prompt,
                out.unformatted_user_prompt, result.model_dump_json(), outcome,
                result.tags_prompt, result.text_prompt,
                json.dumps(result.flux2_prompt, ensure_ascii=False))  # fmt: skip


class PresampleTaskNode:
    """One explicit TIPO task (the reference's "TIPO Single Operation")."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        tasks = [t.value for t in Task]
        return {
            "required": {
                **_request_inputs(),
                "task": (tasks, {"default": Task.SHORT_TO_TAG.value}),
                "expand": ("BOOLEAN", {"default": True,
                                       "tooltip": "continue the input field (off: write it anew)"}),
                **_tail_inputs(),
            },
            "optional": _optional_inputs(),
        }  # fmt: skip

    RETURN_TYPES = (RESULT, "STRING", "STRING")
    RETURN_NAMES = ("result", "prompt", "result_json")
    FUNCTION = "execute"
    CATEGORY = CATEGORY
    DESCRIPTION = "Run one TIPO task; format the result with the Presample Format node."

    @classmethod
    def IS_CHANGED(cls, **kwargs: Any) -> str | float:
        return _seed_changed(**kwargs)

    def execute(self, **kwargs: Any) -> tuple[Any, ...]:
        task = Task.parse(kwargs["task"])
        outcome = _run(kwargs, task=task, expand=bool(kwargs.get("expand", True)))
        return (outcome, texts(outcome).prompt, outcome.result.model_dump_json())


class PresampleFormatNode:
    """Write a result in another template or syntax (the reference's "TIPO Format")."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "result": (RESULT,),
                "template": (TEMPLATE_CHOICES, {"default": "both_tag_first"}),
                "custom_template": _text(placeholder="<|general|>, <|extended|>."),
                "target": (TARGETS, {"default": "comfyui"}),
            }
        }

    RETURN_TYPES = ("STRING", "STRING", "STRING", "STRING")
    RETURN_NAMES = ("prompt", "user_prompt", "unformatted_prompt", "unformatted_user_prompt")
    FUNCTION = "execute"
    CATEGORY = CATEGORY

    def execute(
        self, result: Outcome, template: str, custom_template: str = "", target: str = "comfyui"
    ) -> tuple[str, str, str, str]:
        out = texts(result, template=template_value(template, custom_template), target=target)
        return (out.prompt, out.user_prompt, out.unformatted_prompt, out.unformatted_user_prompt)


def parse_picks(text: str) -> list[int]:
    """``"2, 1"``: the candidates chosen so far, numbered from 1 as the node lists them."""
    picks = []
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit() or int(item) < 1:
            raise ValueError(f"picks: {item!r} is not a candidate number (1, 2, ...)")
        picks.append(int(item) - 1)
    return picks


class PresampleRefineNode:
    """The refine loop as a graph: candidates for the prompt after the picks so far.

    ComfyUI has no dialog, so the session is replayed: with a fixed seed the same
    picks always lead to the same prompt and the same next candidates. Run it,
    read ``candidates``, add a number to ``picks``, run again.
    """

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "prompt": _text(placeholder="1girl, scenery"),
                **_model_inputs(),
                "picks": ("STRING", {"default": "", "multiline": False,
                                     "tooltip": "candidate numbers chosen so far, e.g. 2, 1"}),
                "candidates": ("INT", {"default": 3, "min": 1, "max": 8}),
                "strategy": (["step", "oneshot"], {"default": "step"}),
                "step_tokens": ("INT", {"default": 6, "min": 1, "max": 64}),
                "seed": ("INT", {"default": 0, "min": -1, "max": JS_SAFE_SEED,
                                 "tooltip": "keep it fixed while picking"}),
                "ban_tags": _text(placeholder="red hair, category:artist"),
                "width": _size(),
                "height": _size(),
                "device": (list(DEVICES), {"default": "auto"}),
                "dtype": (list(DTYPES), {"default": "auto"}),
            },
            "optional": {"target": (TARGETS, {"default": "comfyui"}),
                         "sfw": ("BOOLEAN", {"default": True})},
        }  # fmt: skip

    RETURN_TYPES = ("STRING", "STRING", "STRING")
    RETURN_NAMES = ("prompt", "candidates", "state_json")
    FUNCTION = "execute"
    CATEGORY = CATEGORY
    DESCRIPTION = "Grow a prompt a few tags at a time, picking among candidates."

    @classmethod
    def IS_CHANGED(cls, **kwargs: Any) -> str | float:
        return _seed_changed(**kwargs)

    def execute(self, **kw: Any) -> tuple[str, str, str]:
        from pydantic import ValidationError

        from ..refine import RefineOptions, RefineSession
        from ..request import describe_validation_error
        from .common import model_spec, parse_bans

        try:
            options = RefineOptions(
                candidates=int(kw["candidates"]), step_tokens=int(kw["step_tokens"]),
                strategy=kw["strategy"], seed=int(kw["seed"]),
                target=kw.get("target", "comfyui"), ban=parse_bans(kw.get("ban_tags", "")),
                aspect_ratio=int(kw["width"]) / int(kw["height"]), sfw=bool(kw.get("sfw", True)),
            )  # fmt: skip
        except ValidationError as exc:
            raise ValueError(f"invalid settings: {describe_validation_error(exc)}") from None
        picks = parse_picks(kw.get("picks", ""))
        dirs = model_dirs()
        with CACHE.lock:
            presampler = CACHE.get(model_spec(kw["model"], dirs), device=kw.get("device", "auto"),
                                   dtype=kw.get("dtype", "auto"), models_dirs=dirs)  # fmt: skip
            session = RefineSession(presampler, kw["prompt"], options)
            for pick in picks:
                session.pick(pick)
            candidates = session.propose()
        listing = "\n".join(
            f"{c.index + 1}. + {', '.join(c.added)}\n   {c.prompt}" for c in candidates
        )
        return (session.prompt, listing, session.state().model_dump_json())


# --- canvas nodes -------------------------------------------------------------------------


class CanvasParseNode:
    """An Omost-style LLM answer read (never executed) into a canvas."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "answer": _text(placeholder="```python\ncanvas = Canvas()\n..."),
                "lenient": ("BOOLEAN", {"default": False,
                                        "tooltip": "skip bad lines instead of failing"}),
            }
        }  # fmt: skip

    RETURN_TYPES = (CANVAS, "STRING", "STRING")
    RETURN_NAMES = ("canvas", "canvas_json", "problems")
    FUNCTION = "execute"
    CATEGORY = f"{CATEGORY}/canvas"

    def execute(self, answer: str, lenient: bool = False) -> tuple[Canvas, str, str]:
        parsed = parse_answer(answer, lenient=lenient)
        problems = "\n".join(str(p) for p in (*parsed.problems, *parsed.repairs))
        return (parsed.canvas, parsed.canvas.to_json(), problems)


def _canvas_size() -> dict[str, Any]:
    return {"width": _size(), "height": _size()}


class CanvasCompositionNode:
    """The canvas's colour layout as an IMAGE (Omost's initial latent picture)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"canvas": (CANVAS,), **_canvas_size()}}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "execute"
    CATEGORY = f"{CATEGORY}/canvas"

    def execute(self, canvas: Canvas, width: int, height: int) -> tuple[Any]:
        import numpy as np
        import torch

        picture = resize_nearest_exact(composition(canvas), int(width), int(height))
        array = np.ascontiguousarray(picture, dtype=np.float32) / 255.0
        return (torch.from_numpy(array)[None],)


OVERLAPS = ["overlay", "average"]
RESOLUTIONS = ["latent", "pixel"]


def _mask_inputs() -> dict[str, Any]:
    return {
        **_canvas_size(),
        "overlap": (OVERLAPS, {"default": "overlay"}),
        "resolution": (RESOLUTIONS, {"default": "pixel"}),
    }


class CanvasMasksNode:
    """One MASK per layer (global first, then regions far to near), with their texts."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"canvas": (CANVAS,), **_mask_inputs()}}

    RETURN_TYPES = ("MASK", "STRING")
    RETURN_NAMES = ("masks", "layers_json")
    FUNCTION = "execute"
    CATEGORY = f"{CATEGORY}/canvas"

    def execute(
        self, canvas: Canvas, width: int, height: int, overlap: str, resolution: str
    ) -> tuple[Any, str]:
        import numpy as np
        import torch

        export = comfyui_conditioning(
            canvas,
            int(width),
            int(height),
            overlap=overlap,
            resolution=resolution,  # type: ignore[arg-type]
        )
        stack = np.stack([layer.mask for layer in export.layers]).astype(np.float32)
        return (torch.from_numpy(stack), json.dumps(export.to_dict(), ensure_ascii=False))


def encode_bags(clip: Any, texts: Sequence[str]) -> tuple[Any, Any]:
    """Each text one CLIP pass, concatenated along the tokens; the first pass's pooled output.

    This is Omost's lossless encoding of sub-prompt bags: no bag is cut at 77
    tokens because each is under 75, and the image model reads the concatenation
    as one long prompt.
    """
    import torch

    if not texts:
        texts = [""]
    conds, pooled = [], []
    for text in texts:
        cond, pool = clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)
        conds.append(cond)
        pooled.append(pool)
    return torch.cat(conds, dim=1), pooled[0]


class CanvasConditioningNode:
    """Regional conditioning: one masked entry per layer, global weak, regions strong."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "canvas": (CANVAS,),
                "clip": ("CLIP",),
                **_mask_inputs(),
                "global_weight": ("FLOAT", {"default": GLOBAL_WEIGHT, "min": 0.0, "max": 10.0,
                                            "step": 0.01}),
                "region_weight": ("FLOAT", {"default": REGION_WEIGHT, "min": 0.0, "max": 10.0,
                                            "step": 0.01}),
                "greedy_bags": ("BOOLEAN", {"default": True,
                                            "tooltip": "encode each layer as Omost's 75-token "
                                                       "sub-prompt bags, concatenated"}),
            }
        }  # fmt: skip

    RETURN_TYPES = ("CONDITIONING",)
    RETURN_NAMES = ("conditioning",)
    FUNCTION = "execute"
    CATEGORY = f"{CATEGORY}/canvas"

    def execute(
        self,
        canvas: Canvas,
        clip: Any,
        width: int,
        height: int,
        overlap: str,
        resolution: str,
        global_weight: float,
        region_weight: float,
        greedy_bags: bool,
    ) -> tuple[list[list[Any]]]:
        import torch

        export = comfyui_conditioning(
            canvas, int(width), int(height), overlap=overlap, resolution=resolution,  # type: ignore[arg-type]
            global_weight=global_weight, region_weight=region_weight, bags=greedy_bags,
        )  # fmt: skip
        out: list[list[Any]] = []
        for layer in export.layers:
            parts = list(layer.bags) if layer.bags is not None else [layer.text]
            cond, pooled = encode_bags(clip, parts)
            mask = torch.from_numpy(layer.mask.copy())[None]  # ComfyUI's [1, H, W]
            out.append([cond, {"pooled_output": pooled, "mask": mask,
                               "mask_strength": layer.strength,
                               "set_area_to_bounds": False}])  # fmt: skip
        return (out,)


def sub_prompts(text: str) -> list[str]:
    """Sentences and lines of ``text``, each as an Omost sentence (ends with one period)."""
    pieces = [p for line in text.splitlines() for p in line.split(". ")]
    return [sentence(p) for p in pieces if p.strip(",. ")]


class BagEncodeNode:
    """Long text encoded without truncation: greedy 75-token bags of whole sentences."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "clip": ("CLIP",),
                "prefix": ("STRING", {"default": "", "multiline": False,
                                      "tooltip": "repeated at the start of every bag"}),
                "text": _text(placeholder="Sentences or lines; none is ever cut in half."),
            }
        }  # fmt: skip

    RETURN_TYPES = ("CONDITIONING", "STRING")
    RETURN_NAMES = ("conditioning", "bags")
    FUNCTION = "execute"
    CATEGORY = f"{CATEGORY}/canvas"

    def execute(self, clip: Any, prefix: str, text: str) -> tuple[list[list[Any]], str]:
        from ..canvas.tokens import bag_condition
        from ..formatting import Target, escape

        head = (sentence(prefix),) if prefix.strip(",. ") else ()
        condition = Condition("global", None, FULL, head, tuple(sub_prompts(text)))
        bags = [escape(b.text, Target.COMFYUI) for b in bag_condition(condition).bags]
        cond, pooled = encode_bags(clip, bags)
        return ([[cond, {"pooled_output": pooled}]], "\n".join(bags))


NODES: dict[str, tuple[type, str]] = {
    "Presample": (PresampleNode, "Presample (TIPO / DanTagGen)"),
    "PresampleTask": (PresampleTaskNode, "Presample Single Task"),
    "PresampleFormat": (PresampleFormatNode, "Presample Format"),
    "PresampleRefine": (PresampleRefineNode, "Presample Refine (pick and grow)"),
    "PresampleCanvasParse": (CanvasParseNode, "Presample Canvas from LLM Answer"),
    "PresampleCanvasComposition": (CanvasCompositionNode, "Presample Canvas Composition"),
    "PresampleCanvasMasks": (CanvasMasksNode, "Presample Canvas Masks"),
    "PresampleCanvasConditioning": (CanvasConditioningNode, "Presample Canvas Conditioning"),
    "PresampleBagEncode": (BagEncodeNode, "Presample Greedy-Bag Text Encode"),
}


NODE_CLASS_MAPPINGS: dict[str, type] = {name: cls for name, (cls, _) in NODES.items()}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {name: title for name, (_, title) in NODES.items()}

register_model_folder()
