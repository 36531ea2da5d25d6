"""The layouts' public API: pure functions, byte-compatible with tipo-kgen 0.3.1.

What a model reads and writes, without a model: a typed prompt prepared into
canonical categorised tags, the TIPO and DanTagGen inputs built from it, their
outputs parsed back, and prompts written in the reference's templates::

    from presample import PresampleRequest, TagDatabase
    from presample.layouts import prepare, tipo_input

    with TagDatabase() as db:
        ready = prepare(PresampleRequest(prompt="1girl, (smile:1.2), scenery"), db)
    step = ready.steps()[0]
    print(tipo_input(ready.meta(), ready.tag_line(), ready.nl, step.task, step.length,
                     expand=step.expand))

Each lives in the module that owns it (``tipo.py``, ``dtg.py``, ``formatting.py``,
``syntax.py``, ``prepare.py``); this module only gathers them.
"""

from __future__ import annotations

from .dtg import dtg_input, parse_dtg_output
from .formatting import TEMPLATES, apply_template, escape, resolve_template
from .prepare import Prepared, prepare
from .syntax import ParsedPrompt, PromptSyntaxError, parse_prompt
from .tagdb import TagInfo, normalize_key
from .tipo import (
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
    "ParsedPrompt",
    "Prepared",
    "PromptSyntaxError",
    "Step",
    "TagInfo",
    "Task",
    "TipoOutput",
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
