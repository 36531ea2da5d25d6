from __future__ import annotations

import random
from collections import Counter

import pytest

from presample.tagdb import TagDatabase
from presample.tipo import Task, parse_tipo_output, tipo_input
from presample.training.records import Record
from presample.training.samples import (
    IGNORE_INDEX,
    SampleConfig,
    encode,
    make_sample,
    nl_length,
    supported_tasks,
    tag_length,
)


def draw(records: list[Record], seed: int, count: int):
    rng = random.Random(seed)
    usable = [r for r in records if supported_tasks(r)]
    return [make_sample(rng.choice(usable), rng) for _ in range(count)]


def test_every_trained_task_appears(records):
    tasks = Counter(sample.task for sample in draw(records, 0, 2000))
    assert set(tasks) == set(Task)
    assert sum(s.gen_meta for s in draw(records, 1, 500)) > 0


def test_same_seed_same_samples(records):
    assert draw(records, 7, 100) == draw(records, 7, 100)
    assert draw(records, 7, 100) != draw(records, 8, 100)


def test_prompt_is_exactly_tipo_input(records):
    for sample in draw(records, 3, 1000):
        expected = tipo_input(
            sample.meta, sample.tags, sample.nl, sample.task, sample.length,
            expand=sample.expand, gen_meta=sample.gen_meta,
        )  # fmt: skip
        assert sample.prompt == expected


def test_full_text_parses_back_to_the_record(db: TagDatabase):
    record = Record(
        "x:1", "civitai",
        {"special": ["1girl"], "general": ["smile", "long hair", "dress", "flower", "sky"],
         "characters": ["hatsune miku"], "rating": ["general"]},
        short="a girl", long="A girl smiles. She wears a dress.",
    )  # fmt: skip
    rng = random.Random(0)
    for _ in range(300):
        sample = make_sample(record, rng)
        parsed = parse_tipo_output(sample.prompt + sample.target, db.categorize)
        if "tag" in sample.task.fields:
            assert sorted(parsed.tags) == sorted(["1girl", *record.tags["general"]])
        if "long" in sample.task.fields:
            assert parsed.generated == record.long
        # Meta the prompt left out and gen_meta asked for comes back in the target.
        if sample.gen_meta:
            assert parsed.categories["characters"] == ["hatsune miku"]


def test_split_keeps_a_prefix_of_tags(records):
    config = SampleConfig(drop_all_input=0.0)
    rng = random.Random(5)
    record = records[1]
    general = record.tags["general"]
    for _ in range(200):
        sample = make_sample(record, rng, config)
        if sample.task is Task.TAG and sample.expand and sample.tags:
            kept = [t for t in sample.tags.split(", ") if t != "1girl"]
            assert 1 <= len(kept) <= max(1, len(general) * 3 // 5)
            assert sample.target.startswith(", ")


def test_drop_all_input_gives_bare_target_line(records):
    rng = random.Random(0)
    config = SampleConfig(drop_all_input=1.0)
    for _ in range(50):
        sample = make_sample(records[0], rng, config)
        assert not sample.meta
        assert not sample.tags and not sample.nl


def test_length_tokens_from_real_counts():
    assert tag_length(5).value == "very_short"
    assert tag_length(30).value == "short"
    assert tag_length(40).value == "long"
    assert tag_length(70).value == "very_long"
    assert nl_length("One.").value == "very_short"
    assert nl_length("One. Two. Three. Four. Five.").value == "long"


def test_masks(records, tokenizer):
    rng = random.Random(0)
    usable = [r for r in records if supported_tasks(r)]
    seen = set()
    for _ in range(200):
        sample = make_sample(rng.choice(usable), rng)
        ids, labels = encode(sample, tokenizer, 1024)
        prompt_len = len(tokenizer(sample.prompt)["input_ids"])
        assert len(ids) == len(labels)
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
        assert labels[0] == IGNORE_INDEX  # nothing predicts <s>
        assert labels[prompt_len:] == ids[prompt_len:]
        if sample.mask_prompt:
            assert set(labels[:prompt_len]) == {IGNORE_INDEX}
        else:
            assert labels[1:prompt_len] == ids[1:prompt_len]
        seen.add(sample.mask_prompt)
    assert seen == {True, False}


def test_record_without_task_is_refused():
    with pytest.raises(ValueError):
        make_sample(Record("x", "coco", {}, short="only short"), random.Random(0))


def test_task_weights_shift_the_task_mix(records):
    usable = [r for r in records if Task.TAG_TO_LONG in dict(supported_tasks(r))]
    assert usable

    def share(config: SampleConfig) -> float:
        rng = random.Random(3)
        drawn = [make_sample(rng.choice(usable), rng, config).task for _ in range(600)]
        return drawn.count(Task.TAG_TO_LONG) / len(drawn)

    plain = share(SampleConfig())
    assert share(SampleConfig(task_weights=(("tag_to_long", 4.0),))) > plain + 0.1
    assert share(SampleConfig(task_weights=(("tag_to_long", 0.0),))) == 0.0
    # A record that supports only the task weighted out still gives a sample.
    tags_only = Record("t", "civitai", {"general": ["smile", "sky", "tree"], "rating": ["general"]})
    assert [t for t, _ in supported_tasks(tags_only)] == [Task.TAG]
    out = SampleConfig(task_weights=(("tag", 0.0),))
    assert make_sample(tags_only, random.Random(0), out).task is Task.TAG
