"""Requests and results: the plain, validated data every front end speaks.

The same JSON is accepted by the Python API, ``presample show-input`` /
``presample run`` and the server, so it lives here once. Limits are generous
for real prompts and stop absurd ones (a 1 MB prompt, 10,000 tags) with a
message that says which field and why.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .categories import TAG_GROUPS, Category
from .formatting import DEFAULT_TEMPLATE, Target, resolve_template
from .patterns import compile_user_regex
from .tipo import Length, Task

MAX_TAGS = 512
# The end of the "too many tags" message (servers with a lower limit recognise it).
TOO_MANY_TAGS = "tags in all"
MAX_TAG_CHARS = 200
MAX_NL_CHARS = 20_000
MAX_PROMPT_CHARS = 100_000
MAX_BAN_RULES = 256
MAX_TAG_PRIOR = 4.0
MAX_SEED = 2**63 - 1
MAX_CAPTION_CANDIDATES = 8

Tag = Annotated[str, Field(max_length=MAX_TAG_CHARS)]


class _Model(BaseModel):
    # Unknown keys are errors: a misspelt "tag_lenght" must not be silently ignored.
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class TagSet(_Model):
    """Tags by TIPO category, each list in the user's order."""

    special: list[Tag] = Field(default_factory=list, description="1girl, 2boys, ...")
    general: list[Tag] = Field(default_factory=list)
    characters: list[Tag] = Field(default_factory=list)
    copyrights: list[Tag] = Field(default_factory=list)
    artist: list[Tag] = Field(default_factory=list)
    meta: list[Tag] = Field(default_factory=list, description="absurdres, highres, ...")
    quality: list[Tag] = Field(default_factory=list, description="masterpiece, newest, ...")
    rating: list[Tag] = Field(default_factory=list, description="safe, sensitive, ...")

    @field_validator("*", mode="after")
    @classmethod
    def _clean(cls, tags: list[str]) -> list[str]:
        cleaned: list[str] = []
        for tag in tags:
            tag = " ".join(tag.split())
            if not tag:
                continue
            if "\n" in tag or "," in tag:
                raise ValueError(f"a tag cannot contain a comma or newline: {tag[:40]!r}")
            if tag not in cleaned:
                cleaned.append(tag)
        return cleaned

    @model_validator(mode="after")
    def _limit(self) -> TagSet:
        total = self.count()
        if total > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} {TOO_MANY_TAGS}, got {total}")
        return self

    def count(self) -> int:
        return sum(len(getattr(self, c.value)) for c in Category)

    def get(self, category: str | Category, default: Any = None) -> list[str]:
        """Mapping-style access, so a TagSet can go straight into the layouts."""
        return getattr(self, Category(category).value, default)

    def as_dict(self) -> dict[str, list[str]]:
        return {c.value: list(getattr(self, c.value)) for c in Category}

    def all_tags(self) -> list[str]:
        return [t for c in Category for t in getattr(self, c.value)]

    def is_empty(self) -> bool:
        return self.count() == 0


class BanRule(_Model):
    """A tag (or sentence) the result must not contain.

    ``exact``: this tag in any spelling; ``substring``: tags containing the text;
    ``regex``: tags matching the pattern (case-insensitive); ``category``: a
    whole category such as ``artist`` or ``characters``; ``group``: a tag group
    such as ``hair``, ``eyes`` or ``clothing``.
    """

    kind: Literal["exact", "substring", "regex", "category", "group"] = "exact"
    pattern: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _check(self) -> BanRule:
        if self.kind == "regex":
            compile_user_regex(self.pattern)  # refused here, before any work starts
        if self.kind == "group" and self.pattern not in TAG_GROUPS:
            raise ValueError(f"unknown tag group {self.pattern!r}; valid: {', '.join(TAG_GROUPS)}")
        if self.kind == "category":
            try:
                Category(self.pattern)
            except ValueError:
                valid = ", ".join(c.value for c in Category)
                raise ValueError(f"unknown category {self.pattern!r}; valid: {valid}") from None
        return self


class PresampleRequest(_Model):
    """What the user wants expanded, and how."""

    prompt: str = Field(
        "",
        max_length=MAX_PROMPT_CHARS,
        description="The prompt as typed in A1111/ComfyUI (tags, sentences, weights, "
        "BREAK, <lora:...>). It is parsed and categorised into `tags` and `nl_prompt`; "
        "weights, BREAK and extra networks come back intact in the final prompt.",
    )
    tags: TagSet = Field(default_factory=TagSet, description="Already categorised tags.")
    nl_prompt: str = Field("", max_length=MAX_NL_CHARS, description="Natural-language text.")
    aspect_ratio: float | None = Field(None, gt=0.05, lt=20, description="width / height")
    width: int | None = Field(None, ge=16, le=32768)
    height: int | None = Field(None, ge=16, le=32768)
    tag_length: Length = Length.LONG
    nl_length: Length = Length.LONG
    expand_tags: bool = True
    expand_nl: bool = True
    generate_nl: bool = Field(True, description="Add the final caption-writing step.")
    tag_first: bool = True
    gen_meta: bool = Field(False, description="Let the last step write missing meta lines.")
    add_quality: bool = True
    period: Literal["newest", "recent", "mid", "early", "old", "none"] = Field(
        "newest",
        description="TIPO v2.1 only: the period word its quality line carries (the image's "
        "era: newest >= 2024 ... old); added when the quality tags have none. none: add none.",
    )
    sfw: bool = Field(
        True,
        description="When no rating tag is given, ask for a general-rated image. A general "
        "rating keeps explicit and suggestive tags out of the result, a sensitive one explicit "
        "tags (steered during generation); the user's own tags always stay.",
    )
    ban: list[BanRule] = Field(default_factory=list, max_length=MAX_BAN_RULES)
    ignored: list[Tag] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description="Tags that bypass the model and come back in place (LoRA triggers).",
    )
    seed: int = Field(-1, ge=-1, le=MAX_SEED, description="-1 picks a random seed.")
    template: str = Field(DEFAULT_TEMPLATE, max_length=4000)
    target: Target = Target.A1111
    shuffle_new_tags: bool = True
    caption_candidates: int = Field(
        3,
        ge=1,
        le=MAX_CAPTION_CANDIDATES,
        description="Captions drawn when one is written from tags alone; the one whose "
        "words come most from the tags is kept (1: a single draw, as the reference does).",
    )
    caption_people: bool = Field(
        True,
        description="Lean a caption written from tags alone towards the people the tags "
        "count (1girl: girl, woman ...) until it names them, and away from people they do "
        "not count (a man beside 1girl alone); when they count nobody, towards the things "
        "your own one-word tags name (cat, window). Token by token among the words the model "
        "already finds likely (presample/caption_subject.py); a draw that names them is "
        "kept before one that fits more tags, and when none of the draws does, draw once "
        "more (unless caption_candidates is 1). False: the model's own words, as the "
        "reference (1girl, scenery is then often a landscape without her).",
    )
    fill_tag_length: bool = Field(
        True,
        description="Refuse to end the tag line before it holds a tag count drawn (with the "
        "seed) from the tag length's range, and refuse repeated tags on it, so one model "
        "call reaches the target. False: the reference's behaviour (end when the model "
        "likes, retry until the minimum is reached).",
    )
    count_tag: bool = Field(
        True,
        description="When your tags describe a person (long hair, smile ...) but count "
        "nobody, add the people-count tag they most often come with in real prompts "
        "(1girl, 1boy ...) before the model reads them: TIPO models were trained with it "
        "first on the line and never add it after your tags (presample/count_tags.py). A "
        "counted line gets another only on strong evidence (1girl, hetero -> 1boy). False: "
        "your tags as given.",
    )
    fill_nl_length: bool = Field(
        True,
        description="Refuse to end a caption being written before it holds the sentence "
        "length's minimum of complete sentences, so one model call reaches the target. "
        "False: the reference's behaviour (end when the model likes, retry until the "
        "minimum is reached; a finished one-sentence caption often stays one sentence).",
    )
    new_names: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Which names the model may add. auto: artists only when the request "
        "names an artist, characters and copyrights only when it names a character or a "
        "copyright; always: any (the reference's behaviour); never: none. The user's own "
        "tags are always kept.",
    )
    tag_prior: float = Field(
        0.0,
        ge=0,
        le=MAX_TAG_PRIOR,
        description="Strength of the co-occurrence prior on the tag line: the model's "
        "candidate tokens are favoured by how often the tags they lead to accompany the "
        "request's tags in real prompts (presample/tag_prior.py). 0: off, the model alone. "
        "Left out, the model card's value (the shipped model's is on; published models' off).",
    )
    tag_draw: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of the new tags a tag line needs that are drawn from the tags "
        "that most often accompany the request's tags (and characters) in real prompts, "
        "before the model writes the rest (presample/tag_prior.py: draw_tags). 0: the model "
        "writes them all; 1: the model writes none unless the line runs short. Left out, the "
        "model card's value (the shipped model's 0.5; published models' 0).",
    )
    tag_spelling: Literal["canonical", "typed"] = Field(
        "canonical",
        description="How your own tags are written in the default (typed) output. "
        "canonical: as every tag is written for the target (long_hair -> long hair, "
        "Hatsune_Miku -> hatsune miku, an alias -> its tag, brackets escaped); weighted "
        "tags, prompt editing and text stay as typed. typed: every byte as you typed it.",
    )
    read_any_script: bool = Field(
        False,
        description="Show the model text in any script. False: text mostly in a script the "
        "models cannot read (Chinese, Japanese, Cyrillic ...; they learned English and "
        "romanised Danbooru tags) stays in the prompt as typed but is not shown to the model, "
        "and a prompt of nothing else comes back unchanged, with a note. True: the "
        "reference's behaviour (the model answers about something else entirely).",
    )
    known_tags_only: bool = Field(
        True,
        description="New tags must be tags the tag database knows: on the tag line unknown "
        "words are refused as they are written, and unknown tags on any tag line (artists, "
        "characters, copyrights too) are dropped; the user's own tags are always kept. "
        "False: the model may write any tag.",
    )

    @field_validator("prompt", "nl_prompt", mode="after")
    @classmethod
    def _text(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("text contains a NUL character")
        return value.strip()

    @field_validator("template", mode="after")
    @classmethod
    def _template(cls, value: str) -> str:
        resolve_template(value)
        return value

    @model_validator(mode="after")
    def _aspect(self) -> PresampleRequest:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither")
        if self.width is not None and self.height is not None:
            ratio = self.width / self.height
            if self.aspect_ratio is not None and abs(ratio - self.aspect_ratio) > 0.05:
                raise ValueError(
                    f"aspect_ratio {self.aspect_ratio} contradicts width/height "
                    f"{self.width}x{self.height}"
                )
        return self

    def effective_aspect_ratio(self) -> float | None:
        if self.width is not None and self.height is not None:
            return self.width / self.height
        return self.aspect_ratio


class StepResult(_Model):
    """One model call, for inspection and debugging."""

    task: Task
    length: Length
    expand: bool
    gen_meta: bool = False
    model_input: str = Field("", description="What the model read on the first attempt.")
    last_input: str = Field(
        "", description="What it read on the last attempt (retries feed the result back)."
    )
    model_output: str = Field("", description="What it wrote on the last attempt.")
    seed: int = 0
    attempts: int = 1
    draws: int = Field(
        1, description="Continuations drawn over all attempts (a caption from tags: several)."
    )
    input_tokens: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0
    reached_target: bool = Field(
        True, description="False when the retries ran out below the length target."
    )


class PresampleResult(_Model):
    """The expanded prompt, in parts and formatted."""

    tags: TagSet = Field(default_factory=TagSet)
    extended: str = Field("", description="The user's text, extended by the model.")
    generated: str = Field("", description="A caption the model wrote from scratch.")
    prompt: str = Field("", description="The formatted prompt, ready to paste.")
    user_prompt: str = Field("", description="The user's own prompt, formatted the same way.")
    seed: int = 0
    model: str = ""
    engine: str = Field(
        "",
        description="The engine and precision that ran the model (onnx int8, transformers "
        "bfloat16, llama.cpp q5_0 ...): a seed reproduces the same text on the same engine.",
    )
    steps: list[StepResult] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    tags_prompt: str = Field(
        "",
        description="The tags alone, comma-separated and escaped for the target: for CLIP "
        "text encoders (SD 1.5, SDXL, the CLIP half of SD3/FLUX.1).",
    )
    text_prompt: str = Field(
        "",
        description="The sentences alone (your text as extended, a caption written from "
        "tags): for T5 and LLM text encoders (SD3, FLUX). Empty when there is no prose.",
    )
    flux2_prompt: dict[str, Any] = Field(
        default_factory=dict,
        description="A FLUX.2 structured prompt (scene, subjects, style, color_palette, "
        "lighting, background, composition, camera) read from the tags and sentences; "
        "fields the result says nothing about are left out.",
    )
    added: list[str] = Field(
        default_factory=list,
        description="The tags of ``tags`` the model added (the others are the user's), "
        "canonical names as in ``tags``.",
    )
    notes: list[str] = Field(
        default_factory=list,
        description="What the user should know about this result: input kept as typed "
        "because the model cannot read it, ...",
    )


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, naming the field: 'tags.general: at most 512 tags'."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err.get("loc", ())) or "request"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
