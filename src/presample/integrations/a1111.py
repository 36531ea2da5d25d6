"""The A1111 / Forge script's processing, as pure functions over the processing object.

``integrations/a1111/scripts/presample_script.py`` builds the gradio UI and
calls these; everything that decides what a prompt becomes lives here so it is
tested against a stand-in of A1111's ``StableDiffusionProcessing`` (the
documented attributes ``prompt``, ``all_prompts``, ``all_seeds``, ``seed``,
``batch_size``, ``n_iter``, ``width``, ``height``, ``extra_generation_params``,
and ``enable_hr`` / ``hr_prompt`` / ``all_hr_prompts`` for hires fix).

* After other prompt processing (the default): every image's own prompt, as
  wildcards, dynamic prompts and styles left it, is presampled with its own
  seed, ``base + image index``; all images share batched forward passes.
* Before other processing: the typed prompt is presampled once, before
  wildcards are filled in, and wildcard syntax (``__name__``, ``{a|b}``) is kept
  away from the model and put back for the wildcard extension to expand.

Each image's infotext records its presample seed and its prompt as it was
before presampling, so "send to txt2img" restores both and Generate gives the
same prompt again. Weights, ``BREAK`` and ``<lora:...>`` never reach the model
(``prepare`` keeps them out) and come back in place.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ..record import PromptRecord, infotext_params
from ..request import MAX_SEED, PresampleRequest, PresampleResult
from .common import MODEL_DEFAULT, ModelCache, model_spec, using_sampling
from .presampling import Outcome, build_request, sampling_value, template_value, texts

INFOTEXT_SEED = "Presample seed"
INFOTEXT_INPUT = "Presample input"
INFOTEXT_SETTINGS = "Presample"
INFOTEXT_HASH = "Presample model hash"
AFTER = "after"
BEFORE = "before"
TIMINGS: dict[str, str] = {
    AFTER: "After other prompt processing (wildcards, dynamic prompts, styles): every image",
    BEFORE: "Before other prompt processing: once, wildcards kept for later",
}
SEED_LIMIT = 2**32
"""Random base seeds are drawn below this, so ``base + index`` stays a plain 32-bit seed."""


@dataclass(frozen=True)
class ScriptOptions:
    """The script's UI values, in the order ``ui()`` returns its components."""

    enabled: bool = False
    timing: str = AFTER
    seed: int = -1
    model: str = "default"
    tag_length: str = MODEL_DEFAULT
    nl_length: str = MODEL_DEFAULT
    template: str = "both_tag_first"
    custom_template: str = ""
    ban: str = ""
    ignored: str = ""
    nl_prompt: str = ""
    sampling: str = "model default"
    temperature: float = 0.35
    top_p: float = 0.95
    top_k: int = 60
    min_p: float = 0.1
    repetition_penalty: float = 1.17
    max_new_tokens: int = 512
    device: str = "auto"
    dtype: str = "auto"
    no_formatting: bool = False
    """The reference's "No formatting": tags as typed plus the model's, then its text."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_args(cls, args: Sequence[Any]) -> ScriptOptions:
        """Options from ``process(p, *args)``; gradio gives numbers as floats."""
        names = cls.names()
        if len(args) != len(names):
            raise ValueError(f"expected {len(names)} script arguments, got {len(args)}")
        values = dict(zip(names, args, strict=True))
        for name in ("seed", "top_k", "max_new_tokens"):
            values[name] = int(values[name]) if values[name] is not None else -1
        return cls(**values)

    def settings_infotext(self) -> str:
        """Every setting except the seed and the enable switch, safe in an infotext.

        URL-encoding leaves no comma, colon, quote or newline, the characters
        A1111's infotext parser splits or unquotes on, so the value survives any
        version's round trip unchanged.
        """
        values = {k: v for k, v in asdict(self).items() if k not in ("enabled", "seed")}
        return urlencode({k: str(v) for k, v in values.items()})

    def request_for(
        self, prompt: str, seed: int | None = None, width: int | None = None,
        height: int | None = None,
    ) -> PresampleRequest:  # fmt: skip
        """The request these options make of ``prompt`` (``seed``: else the options')."""
        return build_request(
            prompt=prompt, nl_prompt=self.nl_prompt, tag_length=self.tag_length,
            nl_length=self.nl_length, template=template_value(self.template, self.custom_template),
            ban=self.ban, ignored=self.ignored, seed=self.seed if seed is None else seed,
            width=width, height=height, target="a1111",
        )  # fmt: skip

    @classmethod
    def from_infotext(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """UI values from a pasted infotext (only the keys it holds), for ``infotext_fields``."""
        if INFOTEXT_SEED not in params:
            return {}
        out: dict[str, Any] = {"enabled": True}
        with contextlib.suppress(ValueError):
            out["seed"] = int(str(params[INFOTEXT_SEED]).strip())
        defaults = asdict(cls())
        for key, raw in parse_qsl(str(params.get(INFOTEXT_SETTINGS, ""))):
            if key not in defaults or key in ("enabled", "seed"):
                continue
            default = defaults[key]
            try:
                if isinstance(default, bool):
                    out[key] = raw == "True"
                elif isinstance(default, int):
                    out[key] = int(float(raw))
                elif isinstance(default, float):
                    out[key] = float(raw)
                else:
                    out[key] = raw
            except ValueError:
                continue
        return out


def record_from_infotext(text: str) -> PromptRecord | None:
    """The record an image's infotext holds (``None`` without Presample fields), for
    ``presample show``: the request the settings make of the input, with its seed."""
    prompt, params = infotext_params(text)
    typed = pasted_prompt(params)
    if typed is None:
        return None
    options = ScriptOptions(**ScriptOptions.from_infotext(params))
    return PromptRecord(
        request=options.request_for(typed),
        prompt=prompt,
        model=options.model,
        model_hash=params.get(INFOTEXT_HASH, ""),
        source="a1111",
    )


def pasted_prompt(params: Mapping[str, Any]) -> str | None:
    """The prompt box after pasting: the prompt as it was before presampling."""
    if INFOTEXT_SEED in params and INFOTEXT_INPUT in params:
        return str(params[INFOTEXT_INPUT])
    return None


def base_seed(seed: int) -> int:
    """The generation's presample seed: the one given, or a new random one for -1."""
    seed = int(seed)
    if seed < 0:
        return secrets.randbelow(SEED_LIMIT)
    return min(seed, MAX_SEED)


def image_seeds(base: int, count: int) -> list[int]:
    """Image ``i`` gets ``base + i``: image 0 of a pasted-back seed is that seed."""
    return [min(base + i, MAX_SEED) for i in range(count)]


# Wildcard / dynamic-prompt syntax the "before" timing must not show the model.
_DYNAMIC = re.compile(r"__[^_\s][^\s,]*?__|\{[^{}]*\}|\$\$")


def hold_dynamic(prompt: str) -> tuple[str, list[str]]:
    """Split off comma-separated chunks that hold wildcard syntax.

    Returns the rest (for the model) and the held chunks, to be put back as
    written so the wildcard extension still expands them afterwards.
    """
    kept: list[str] = []
    held: list[str] = []
    for chunk in _split_top_level(prompt):
        (held if _DYNAMIC.search(chunk) else kept).append(chunk)
    return ",".join(kept).strip(" ,"), [c.strip() for c in held if c.strip()]


def _split_top_level(prompt: str) -> list[str]:
    """Commas outside ``{}`` and ``()``/``[]`` (a choice may hold commas)."""
    chunks, depth, start = [], 0, 0
    for i, ch in enumerate(prompt):
        if ch in "{([":
            depth += 1
        elif ch in "})]" and depth:
            depth -= 1
        elif ch == "," and depth == 0:
            chunks.append(prompt[start:i])
            start = i + 1
    chunks.append(prompt[start:])
    return chunks


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
        sampling = sampling_value(
            options.sampling, temperature=options.temperature, top_p=options.top_p,
            top_k=options.top_k, min_p=options.min_p,
            repetition_penalty=options.repetition_penalty, max_new_tokens=options.max_new_tokens,
        )  # fmt: skip
        requests = [
            options.request_for(prompt, seed, width, height)
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
        out = []
        for request, result in zip(requests, results, strict=True):
            assert isinstance(result, PresampleResult)
            written = texts(Outcome(request, result))
            out.append(written.unformatted_prompt if options.no_formatting else written.prompt)
        return out



Runner = Callable[[Sequence[str], Sequence[int], ScriptOptions, int | None, int | None], list[str]]


def process_after(
    p: Any, options: ScriptOptions, run: Runner, model_hash: Callable[[], str] | None = None
) -> None:
    """Presample every image's prompt with its own seed; record seeds and inputs per image."""
    if not options.enabled or options.timing != AFTER:
        return
    originals = list(p.all_prompts)
    seeds = image_seeds(base_seed(options.seed), len(originals))
    new = run(originals, seeds, options, p.width, p.height)
    if getattr(p, "enable_hr", False) and getattr(p, "all_hr_prompts", None):
        # A hires prompt left equal to its image's prompt follows it; one the user
        # set apart stays as set.
        p.all_hr_prompts = [
            new[i] if hr == originals[i] else hr for i, hr in enumerate(p.all_hr_prompts)
        ]
    p.all_prompts = new
    record(p, options, seeds, originals, model_hash() if model_hash else "")


def process_before(
    p: Any, options: ScriptOptions, run: Runner, model_hash: Callable[[], str] | None = None
) -> None:
    """Presample the typed prompt once, before wildcards; their syntax is put back."""
    if not options.enabled or options.timing != BEFORE:
        return
    original = p.prompt
    seed = base_seed(options.seed)
    rest, held = hold_dynamic(original)
    (new,) = run([rest], [seed], options, p.width, p.height)
    if held:
        new = f"{new.rstrip().rstrip(',')},\n{', '.join(held)}" if new.strip() else ", ".join(held)
    p.prompt = new
    if getattr(p, "hr_prompt", None) == original:
        p.hr_prompt = new
    record(p, options, [seed], [original], model_hash() if model_hash else "")


def record(
    p: Any, options: ScriptOptions, seeds: list[int], inputs: list[str], model_hash: str = ""
) -> None:
    """Write the infotext: per-image lists (A1111 picks each image's entry) or one value.
    ``presample show IMAGE`` reads it back (``presample/record.py``)."""
    extra = p.extra_generation_params
    extra[INFOTEXT_SEED] = seeds if len(seeds) > 1 else seeds[0]
    extra[INFOTEXT_INPUT] = inputs if len(inputs) > 1 else inputs[0]
    extra[INFOTEXT_SETTINGS] = options.settings_infotext()
    if model_hash:
        extra[INFOTEXT_HASH] = model_hash


def generate_prompt(
    prompt: str, options: ScriptOptions, run: Runner, width: int | None = None,
    height: int | None = None,
) -> str:  # fmt: skip
    """The "Generate prompt" button: the prompt box's text, presampled, for the prompt box."""
    if not prompt.strip() and not options.nl_prompt.strip():
        return prompt
    (new,) = run([prompt], [base_seed(options.seed)], replace(options, enabled=True), width, height)
    return new


def model_dirs(models_path: str | Path, extensions_dir: str | Path | None = None) -> list[Path]:
    """``models/presample``, the reference's ``models/kgen`` and its extension's ``models``."""
    root = Path(models_path)
    dirs = [root / "presample", root / "kgen"]
    if extensions_dir is not None:
        base = Path(extensions_dir)
        dirs.append(base / "z-tipo-extension" / "models")
    return dirs
