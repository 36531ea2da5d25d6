"""presample: text presampling for text-to-image generation.

The public API. Importing it is cheap (no torch, no network, no file reads):
model backends load only when a model is asked for.

Layouts (pure functions, byte-compatible with tipo-kgen 0.3.1)::

    from presample import TagDatabase, PresampleRequest, prepare, tipo_input
    with TagDatabase() as db:
        ready = prepare(PresampleRequest(prompt="1girl, (smile:1.2), scenery"), db)
    step = ready.steps()[0]
    print(tipo_input(ready.meta(), ready.tag_line(), ready.nl, step.task, step.length,
                     expand=step.expand))

Generation (needs ``pip install 'presample[torch]'``; PyTorch loads with the model)::

    from presample import Presampler
    with Presampler() as p:                 # or a folder, a .gguf, a Hugging Face id
        print(p("1girl, scenery").prompt)
        results = p.presample_many(["1girl", "a cat on a sofa"])   # shared batches

Omost canvases (masks, pictures and CLIP counts need ``pip install 'presample[canvas]'``)::

    from presample.canvas import parse_answer, conditions, composition, bag_canvas, flat_prompt
"""

from __future__ import annotations

__version__ = "0.1.0"

from .categories import Category
from .dtg import dtg_input, parse_dtg_output
from .engine.backend import ModelError
from .engine.sampling import Sampling
from .errors import InputError, PresampleError, RunError
from .formatting import TEMPLATES, Target, apply_template, escape, resolve_template
from .prepare import Prepared, prepare
from .presampler import Presampler
from .refine import Candidate, RefineError, RefineOptions, RefineSession, RefineState
from .request import BanRule, PresampleRequest, PresampleResult, StepResult, TagSet
from .syntax import ParsedPrompt, PromptSyntaxError, parse_prompt
from .tagdb import TagDatabase, TagDatabaseError, TagInfo, normalize_key
from .tipo import (
    Length,
    Step,
    Task,
    TipoOutput,
    build_meta,
    parse_tipo_output,
    plan_steps,
    tag_line,
    tipo_input,
)

__all__ = [
    "TEMPLATES",
    "BanRule",
    "Candidate",
    "Category",
    "InputError",
    "Length",
    "ModelError",
    "ParsedPrompt",
    "Prepared",
    "PresampleError",
    "PresampleRequest",
    "PresampleResult",
    "Presampler",
    "PromptSyntaxError",
    "RefineError",
    "RefineOptions",
    "RefineSession",
    "RefineState",
    "RunError",
    "Sampling",
    "Step",
    "StepResult",
    "TagDatabase",
    "TagDatabaseError",
    "TagInfo",
    "TagSet",
    "Target",
    "Task",
    "TipoOutput",
    "__version__",
    "apply_template",
    "build_meta",
    "dtg_input",
    "escape",
    "normalize_key",
    "parse_dtg_output",
    "parse_prompt",
    "parse_tipo_output",
    "plan_steps",
    "prepare",
    "resolve_template",
    "tag_line",
    "tipo_input",
]
