"""presample: text presampling for text-to-image generation.

The public API. Importing it is cheap (no torch, no network, no file reads):
model backends load only when a model is asked for.

Generation (the default engine needs the ``onnx`` extra: ``pip install -e '.[onnx]'``
in the repository)::

    from presample import Presampler, PresampleRequest
    with Presampler() as p:                 # or a folder, a .gguf, a Hugging Face id
        print(p("1girl, scenery").prompt)
        result = p(PresampleRequest(prompt="a cat on a sofa", seed=7, nl_length="short"))
        results = p.presample_many(["1girl", "a cat on a sofa"])   # shared batches

Refining (``RefineSession``), the tag database (``TagDatabase``) and the errors
every call may raise (``PresampleError``: ``InputError`` for bad input,
``RunError``/``ModelError`` for a run that failed) are here too. The layouts
(pure functions: model inputs and outputs, templates) are in
``presample.layouts``; Omost canvases in ``presample.canvas``::

    from presample.canvas import parse_answer, conditions, composition, bag_canvas, flat_prompt
"""

from __future__ import annotations

__version__ = "0.1.0"

from .categories import Category
from .engine.backend import ModelError
from .engine.sampling import Sampling
from .errors import InputError, PresampleError, RunError
from .formatting import Target
from .presampler import LoadSettings, Presampler
from .refine import RefineOptions, RefineSession
from .request import BanRule, PresampleRequest, PresampleResult, StepResult, TagSet
from .tagdb import TagDatabase
from .tipo import Length

__all__ = [
    "BanRule",
    "Category",
    "InputError",
    "Length",
    "LoadSettings",
    "ModelError",
    "PresampleError",
    "PresampleRequest",
    "PresampleResult",
    "Presampler",
    "RefineOptions",
    "RefineSession",
    "RunError",
    "Sampling",
    "StepResult",
    "TagDatabase",
    "TagSet",
    "Target",
    "__version__",
]
