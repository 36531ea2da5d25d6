"""TIPO training samples, drawn on the fly from prepared records (``spec/TIPO.md``).

Every call draws a new sample, so every epoch sees new tag orders, input/target
splits, dropped meta lines and tasks. The input part is always produced by
``presample.tipo.tipo_input``, the function inference uses, so the training and
inference layouts cannot drift; the target is the rest of the full text plus ``</s>``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..tipo import META_KEYS, NL_MIN, TAG_MAX, Length, Task, build_meta, tag_line, tipo_input
from .captions import sentences
from .records import Record

IGNORE_INDEX = -100


@dataclass(frozen=True, slots=True)
class SampleConfig:
    """The probabilities of the published recipe (``spec/TIPO.md``, "Training samples")."""

    drop_all_input: float = 0.1
    drop_meta_sample: float = 0.3
    drop_meta_line: float = 0.35
    gen_meta: float = 0.3
    whole_text_loss: float = 0.7
    keep_max_share: float = 3 / 5
    """Tag continuation keeps a prefix of k tags, k uniform in 1 .. this share of the tags."""
    task_weights: tuple[tuple[str, float], ...] = ()
    """Multipliers on the recipe's task weights, by task name (a run that must mend
    one task, e.g. ``(("tag_to_long", 3.0),)``); tasks not named keep theirs."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One training text: ``prompt`` (model input) + ``target`` (continuation, ``</s>`` not
    included). ``mask_prompt`` asks for no loss on the prompt part."""

    task: Task
    prompt: str
    target: str
    mask_prompt: bool
    length: Length
    expand: bool
    gen_meta: bool
    meta: dict[str, str]
    """The meta lines given in the prompt, in their (shuffled) order."""
    tags: str
    """The given ``tag:`` content."""
    nl: str
    """The given user text."""


def tag_length(count: int) -> Length:
    """The length class a tag count belongs to (its ``TAG_MAX`` bucket)."""
    for length in Length:
        if count <= TAG_MAX[length]:
            return length
    return Length.VERY_LONG


def nl_length(text: str) -> Length:
    """The length class a caption belongs to, by its sentence count (``NL_MIN``)."""
    count = len(sentences(text))
    best = Length.VERY_SHORT
    for length in Length:
        if count >= NL_MIN[length]:
            best = length
    return best


def supported_tasks(record: Record) -> list[tuple[Task, float]]:
    """The tasks a record can teach, with their weights.

    Caption tasks need their captions (tag_to_long and long_to_tag a long one,
    short_to_tag a short one, the three-field tasks both, weighing double);
    plain tag expansion needs tags.
    """
    has_tags = bool(record.tags.get("general") or record.tags.get("special"))
    short, long = bool(record.short), bool(record.long)
    tasks: list[tuple[Task, float]] = []
    if has_tags:
        tasks.append((Task.TAG, 1))
        if long:
            tasks += [(Task.TAG_TO_LONG, 1), (Task.LONG_TO_TAG, 1)]
        if short:
            tasks.append((Task.SHORT_TO_TAG, 1))
        if short and long:
            tasks += [
                (Task.TAG_TO_SHORT_TO_LONG, 2),
                (Task.SHORT_TO_TAG_TO_LONG, 2),
                (Task.SHORT_TO_LONG_TO_TAG, 2),
            ]
    if short and long:
        tasks.append((Task.SHORT_TO_LONG, 1))
    return tasks


def make_sample(record: Record, rng: random.Random, config: SampleConfig | None = None) -> Sample:
    """One random sample from a record that supports at least one task."""
    config = config or SampleConfig()
    scale = dict(config.task_weights)
    supported = supported_tasks(record)
    tasks = [(t, w * scale.get(t.value, 1.0)) for t, w in supported]
    # A record whose every task is weighted out still teaches what it can.
    tasks = [(t, w) for t, w in tasks if w > 0] or supported
    if not tasks:
        raise ValueError(f"record {record.id} supports no task")
    task = rng.choices([t for t, _ in tasks], weights=[w for _, w in tasks])[0]

    general = list(record.tags.get("general", ()))
    rng.shuffle(general)
    tags = {**record.tags, "general": general}
    values = {
        "tag": tag_line(tags),
        "short": record.short if not record.coarse or rng.random() < 0.5 else record.coarse,
        "long": record.long,
    }
    tag_count = len(tags.get("special", ())) + len(general)
    length = tag_length(tag_count) if task.output == "tag" else nl_length(values[task.output])

    meta = {key: value for key, value in build_meta(tags).items() if value}
    keys = list(meta)
    rng.shuffle(keys)
    drop_all = rng.random() < config.drop_all_input
    gen_meta = not drop_all and len(keys) >= 2 and rng.random() < config.gen_meta
    given_keys, generated_keys = keys, []
    if drop_all:
        given_keys = []
    elif gen_meta:
        cut = rng.randint(0, len(keys) - 1)
        given_keys, generated_keys = keys[:cut], keys[cut:]
    elif rng.random() < config.drop_meta_sample:
        given_keys = [k for k in keys if rng.random() >= config.drop_meta_line]
    given_meta = {key: meta[key] for key in given_keys}

    # The first candidate input that the layout can express wins; a task none
    # fits (a one-word caption to continue) gives way to another the record supports.
    while True:
        full = _full_text(given_meta, values, task, length, gen_meta)
        for given_tags, given_nl, expand in _candidates(values, task, tags, rng, config, drop_all):
            prompt = tipo_input(
                given_meta, given_tags, given_nl, task, length, expand=expand, gen_meta=gen_meta
            )
            if full.startswith(prompt):
                target = full[len(prompt) :] + "".join(
                    f"\n{key}: {meta[key]}" for key in generated_keys
                )
                mask = rng.random() >= config.whole_text_loss
                return Sample(
                    task, prompt, target, mask, length, expand, gen_meta,
                    given_meta, given_tags, given_nl,
                )  # fmt: skip
        tasks = [(t, w) for t, w in tasks if t is not task]
        if not tasks:
            raise ValueError(f"record {record.id}: no task fits the layout")
        task = rng.choices([t for t, _ in tasks], weights=[w for _, w in tasks])[0]
        length = tag_length(tag_count) if task.output == "tag" else nl_length(values[task.output])


def _nl_key(task: Task) -> str:
    """Where ``tipo_input`` puts the user's text for this task."""
    return "short" if "short" in task.fields else "long"


def _full_text(
    meta: dict[str, str], values: dict[str, str], task: Task, length: Length, gen_meta: bool
) -> str:
    """The whole text of a sample: given meta, target line, every field of the task."""
    head = tipo_input(meta, "", "", Task.TAG, length, expand=True, gen_meta=gen_meta)
    if task.token:
        head = head.replace(f"<|{length.value}|>", f"<|{length.value}|> {task.token}", 1)
    body = "".join(f"\n{key}: {values[key]}" for key in task.fields)
    return head + body


def _candidates(
    values: dict[str, str],
    task: Task,
    tags: dict[str, list[str]],
    rng: random.Random,
    config: SampleConfig,
    drop_all: bool,
) -> list[tuple[str, str, bool]]:
    """Possible prompt contents, (tag line, user text, expand), the random pick first.

    Only fields ``tipo_input`` can carry are given: the tag line and one text
    field. Either every field but the last is given and the model writes the
    last (generate), or the fields before one are given and that one is cut
    short so the model continues it (expand). The caller keeps the first whose
    prompt is a prefix of the full text.
    """
    nl_key = _nl_key(task)
    fields = task.fields
    carried = {"tag", nl_key}
    options: list[tuple[str, str, bool]] = []
    if set(fields[:-1]) <= carried:
        given = {key: values[key] for key in fields[:-1]}
        options.append((given.get("tag", ""), given.get(nl_key, ""), False))
    for cut, key in enumerate(fields):
        if not set(fields[:cut]) <= carried:
            break
        given = {k: values[k] for k in fields[:cut]}
        if cut:
            # The fields before ``cut`` given whole: the layout opens the next
            # field (``short: X\nlong:``) and the model writes the rest.
            options.append((given.get("tag", ""), given.get(nl_key, ""), True))
        if key not in carried:
            break
        if key == "tag":
            given["tag"] = _tag_prefix(tags, rng, config)
        else:
            given[key] = _text_prefix(values[key], rng)
        if given[key]:
            options.append((given.get("tag", ""), given.get(nl_key, ""), True))
    rng.shuffle(options)
    empty = ("", "", True)
    # Dropping all input means starting from the target line alone.
    return [empty, *options] if drop_all else [*options, empty]


def _tag_prefix(tags: dict[str, list[str]], rng: random.Random, config: SampleConfig) -> str:
    """Special tags plus the first k (shuffled) general tags, k uniform in 1 .. 3/5 of them."""
    general = tags.get("general", [])
    top = max(1, int(len(general) * config.keep_max_share))
    keep = rng.randint(1, top) if general else 0
    return tag_line({**tags, "general": general[:keep]})


def _text_prefix(text: str, rng: random.Random) -> str:
    """The first m sentences (1 <= m < n), or for one sentence its first words,
    so something is left to write."""
    parts = sentences(text)
    if len(parts) >= 2:
        prefix = " ".join(parts[: rng.randint(1, len(parts) - 1)])
    else:
        words = text.split()
        prefix = " ".join(words[: rng.randint(1, len(words) - 1)]) if len(words) >= 2 else ""
    # Only a prefix of the caption as written keeps the prompt a prefix of the text.
    return prefix if text.startswith(prefix) else ""


def encode(sample: Sample, tokenizer, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids (``<s>`` + prompt + target + ``</s>``) and labels, -100 where masked.

    The prompt and the target are tokenised separately, as at inference, where
    the model continues the tokenised prompt.
    """
    prompt_ids = tokenizer(sample.prompt)["input_ids"]
    target_ids = tokenizer(sample.target, add_special_tokens=False)["input_ids"]
    target_ids = [*target_ids, tokenizer.eos_token_id]
    ids = (prompt_ids + target_ids)[:max_length]
    if sample.mask_prompt:
        labels = [IGNORE_INDEX] * len(prompt_ids) + target_ids
    else:
        labels = [IGNORE_INDEX, *prompt_ids[1:], *target_ids]
    return ids, labels[:max_length]


def sample_texts(records: Sequence[Record], rng: random.Random, count: int) -> list[str]:
    """Whole sample texts (for training the tokenizer)."""
    usable = [r for r in records if supported_tasks(r)]
    texts = []
    for _ in range(count):
        sample = make_sample(rng.choice(usable), rng)
        texts.append(sample.prompt + sample.target)
    return texts


__all__ = [
    "IGNORE_INDEX",
    "META_KEYS",
    "Sample",
    "SampleConfig",
    "encode",
    "make_sample",
    "nl_length",
    "sample_texts",
    "supported_tasks",
    "tag_length",
]
