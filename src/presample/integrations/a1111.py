"""The A1111 / Forge script in the WebUI's own process: the model runs here.

What a prompt becomes is decided in ``a1111_host`` (standard library only, so
a WebUI that cannot import presample runs it too, against a server); this
module adds what needs presample itself: the runner that loads models
(``Presampling``), the request a prompt makes (``request_for``, also what the
server's ``/api/a1111/run`` uses) and reading a record back from an infotext.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..engine.sampling import Sampling
from ..record import PromptRecord, infotext_params
from ..request import PresampleRequest, PresampleResult
from .a1111_host import (
    AFTER,
    BEFORE,
    INFOTEXT_HASH,
    INFOTEXT_INPUT,
    INFOTEXT_SEED,
    INFOTEXT_SETTINGS,
    TIMINGS,
    Runner,
    ScriptOptions,
    base_seed,
    generate_prompt,
    hold_dynamic,
    image_seeds,
    model_dirs,
    pasted_prompt,
    process_after,
    process_before,
    record,
)
from .common import ModelCache, model_spec, using_sampling
from .presampling import Outcome, build_request, sampling_value, template_value, texts

__all__ = [
    "AFTER", "BEFORE", "INFOTEXT_HASH", "INFOTEXT_INPUT", "INFOTEXT_SEED", "INFOTEXT_SETTINGS",
    "TIMINGS", "Presampling", "Runner", "ScriptOptions", "base_seed", "generate_prompt",
    "hold_dynamic", "image_seeds", "model_dirs", "pasted_prompt", "process_after",
    "process_before", "record", "record_from_infotext", "request_for",
]  # fmt: skip


def request_for(
    options: ScriptOptions, prompt: str, seed: int | None = None, width: int | None = None,
    height: int | None = None,
) -> PresampleRequest:  # fmt: skip
    """The request the options make of ``prompt`` (``seed``: else the options')."""
    return build_request(
        prompt=prompt, nl_prompt=options.nl_prompt, tag_length=options.tag_length,
        nl_length=options.nl_length,
        template=template_value(options.template, options.custom_template),
        ban=options.ban, ignored=options.ignored,
        seed=options.seed if seed is None else seed, width=width, height=height, target="a1111",
    )  # fmt: skip


def written(options: ScriptOptions, request: PresampleRequest, result: PresampleResult) -> str:
    """The prompt the script puts in the WebUI: formatted, or as the reference's
    "No formatting" writes it."""
    out = texts(Outcome(request, result))
    return out.unformatted_prompt if options.no_formatting else out.prompt


def options_sampling(options: ScriptOptions) -> Sampling | None:
    """The sampling the options ask for; ``None``: the model's own."""
    return sampling_value(
        options.sampling, temperature=options.temperature, top_p=options.top_p,
        top_k=options.top_k, min_p=options.min_p,
        repetition_penalty=options.repetition_penalty, max_new_tokens=options.max_new_tokens,
    )  # fmt: skip


def record_from_infotext(text: str) -> PromptRecord | None:
    """The record an image's infotext holds (``None`` without Presample fields), for
    ``presample show``: the request the settings make of the input, with its seed."""
    prompt, params = infotext_params(text)
    typed = pasted_prompt(params)
    if typed is None:
        return None
    options = ScriptOptions(**ScriptOptions.from_infotext(params))
    return PromptRecord(
        request=request_for(options, typed),
        prompt=prompt,
        model=options.model,
        model_hash=params.get(INFOTEXT_HASH, ""),
        source="a1111",
    )


@dataclass
class Presampling:
    """Runs the script's options on prompts with a model cache (the script owns one)."""

    cache: ModelCache
    models_dirs: Sequence[Path] = ()
    last_model_hash: str = ""
    """The hash of the weights of the model the last run used, for the infotext."""

    def run(
        self, prompts: Sequence[str], seeds: Sequence[int], options: ScriptOptions,
        width: int | None = None, height: int | None = None,
    ) -> list[str]:  # fmt: skip
        """One new prompt per (prompt, seed), batched on one model."""
        sampling = options_sampling(options)
        requests = [
            request_for(options, prompt, seed, width, height)
            for prompt, seed in zip(prompts, seeds, strict=True)
        ]

        with self.cache.lock:
            presampler = self.cache.get(
                model_spec(options.model, self.models_dirs), device=options.device,
                dtype=options.dtype, models_dirs=self.models_dirs,
            )  # fmt: skip
            self.last_model_hash = presampler.model_hash
            with using_sampling(presampler, sampling):
                results = presampler.presample_many(requests, raise_errors=True)
        return [
            written(options, request, result)  # type: ignore[arg-type]
            for request, result in zip(requests, results, strict=True)
        ]
