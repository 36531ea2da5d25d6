"""Capture reference strings from tipo-kgen 0.3.1 as JSON Lines test fixtures.

This script builds deterministic inputs (real danbooru tag names from
``shared/data/tags/danbooru.csv``, real captions from the COCO val2017 and DPG-Bench
files, and a few hand-written non-ASCII strings), feeds them to the pure-Python
prompt builders and parsers of the published reference implementation
``tipo-kgen`` (package ``kgen``), and writes the inputs together with the
reference's outputs as fixtures, so presample's own implementation can be pinned
byte-for-byte. No reference code is copied: only the captured strings are written.

It must run with ``tipo-kgen==0.3.1`` importable, either installed in the running
interpreter or unpacked from the wheel and given with ``--kgen-src``. kgen imports
torch, transformers and huggingface_hub at import time although the functions
captured here never use them; when those packages are missing, minimal stand-in
modules are put into ``sys.modules`` before kgen is imported.

Usage (from the repository root)::

    /work/scratch/refvenv/bin/python tools/capture_kgen_fixtures.py \\
        --kgen-src /work/scratch/kgen_src --out tests/fixtures/kgen_0.3.1

Files written: tipo_inputs.jsonl, tipo_operations.jsonl, tipo_parse.jsonl,
format.jsonl, dtg_inputs.jsonl, templates.json (see the README.md beside them).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.metadata
import importlib.util
import itertools
import json
import random
import re
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFERENCE_VERSION = "0.3.1"
SEED = 20241122

LENGTHS = ["very_short", "short", "long", "very_long"]
# Tasks the published TIPO models were trained on (None = plain tag expansion).
TASKS: list[str | None] = [
    None,
    "tag_to_long",
    "long_to_tag",
    "short_to_tag",
    "short_to_long",
    "tag_to_short_to_long",
    "short_to_tag_to_long",
    "short_to_long_to_tag",
]
TAG_MAP_CATEGORIES = [
    "special",
    "general",
    "characters",
    "copyrights",
    "artist",
    "meta",
    "quality",
    "rating",
]
ASPECT_RATIOS = [0.7, 1.0, 1.777, 0.5625, 0.75, 1.333, 1.5, 0.667, 2.0, 0.8]
# Values whose one-decimal rendering sits on a rounding boundary.
ASPECT_RATIO_EDGES = [0.05, 0.25, 0.35, 0.45, 0.65, 1.25, 1.45, 1.55, 2.35, 2.5, 3.0, 0.999]

NON_ASCII_TAGS = [
    "café",
    "pokémon (creature)",
    "crème brûlée",
    "naïve",
    "初音ミク",
    "ポケモン",
    "東方",
    "夏祭り",
]
EXTRA_CAPTIONS = [
    'A girl in a café in Kyoto, holding a cup of matcha; the sign reads "喫茶店".',
    "An old man's portrait, painted in the style of Édouard Manet.",
    'A poster with the words "夏祭り" and a firework: bright, colorful, festive.',
    "Two cats sleeping on a kotatsu, it's winter in Hokkaidō.",
    "A crêpe stand at dusk, with a chalkboard menu: fraise, chocolat, crème brûlée.",
    "初音ミクがステージで歌っている。",
    "A knight's shield bearing the words 'Deus vult', resting against a stone wall.",
    "Señora García waters the geraniums on her balcony at 7:30 in the morning.",
    "A neon sign saying 'ラーメン' glows above a narrow alley.",
    "The café's menu lists: espresso, café au lait, and a naïve little drawing of a cat.",
]
NL_SENTENCES = [
    "The background is softly blurred.",
    "She is smiling gently at the viewer.",
    "Warm sunlight falls across the scene.",
    "Cherry blossom petals drift through the air.",
    "The colors are vivid and the lines are clean.",
    "A small bird perches on a branch nearby.",
    "Her hair moves slightly in the breeze.",
    "The lighting creates a calm, dreamy atmosphere.",
    "In the distance, a city skyline glows at dusk.",
    "The composition draws the eye to the center.",
    "It's a quiet afternoon in the park.",
    'A sign on the wall reads "welcome".',
]


# Keep the committed fixtures free of sexual tag names: general and meta tags matching one
# of these word-start patterns are not used.
_EXPLICIT_PATTERNS = r"""
    sex anal\b anus areola ass\b bdsm bestial bikini blowjob bondage bottomless bound\b bra\b
    breast bukkake bulge butt cameltoe \w*censor cleavage clitor cock\b condom creampie crotch
    cuckold cum cunnil cunt dick\b dildo docking downblouse ejacul erect exhibition fellat
    fingering footjob futa gag gangbang genital grop groin guro handjob hentai hitachi humping
    impregn incest internal lactat leash lewd lingerie loli masturb missionary molest naked
    netorare nipple no\sbra no\spanties nopan nsfw nude orgasm paizuri pant(?:y|ies|su)
    pee(?:ing)?\b \w*philia precum pregnan prostitut pubic pussy rape restrain rimjob scat\b
    selfcest semen shibari shota slave sperm spread strap-on strip(?:ping|ped)?\b swimsuit
    \w*boob tentacle testic thigh thong tits?\b titjob topless tribadism underwear undress
    upskirt urethra urin vagin vibrator vore voyeur x-ray yaoi yuri
"""
_EXPLICIT = re.compile(r"\b(?:" + "|".join(_EXPLICIT_PATTERNS.split()) + ")", re.IGNORECASE)


def is_explicit(tag: str) -> bool:
    return _EXPLICIT.search(tag.replace("_", " ")) is not None


# --------------------------------------------------------------------------- kgen import


def _stub_module(name: str) -> types.ModuleType:
    """A module whose every missing attribute is a dummy class (enough for kgen's imports)."""
    module = types.ModuleType(name)

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return type(attr, (), {})

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def import_kgen(kgen_src: Path | None) -> types.SimpleNamespace:
    """Import the reference package, stubbing heavy dependencies that are not installed."""
    if kgen_src is not None:
        sys.path.insert(0, str(kgen_src.resolve()))
    stubbed = []
    for name in ("torch", "transformers", "huggingface_hub"):
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = _stub_module(name)
            stubbed.append(name)
    version = importlib.metadata.version("tipo-kgen")
    if version != REFERENCE_VERSION:
        raise SystemExit(f"tipo-kgen {REFERENCE_VERSION} required, found {version}")

    import kgen.executor.dtg as dtg
    import kgen.executor.tipo as tipo
    import kgen.formatter as formatter
    import kgen.metainfo as metainfo
    import kgen.models as models

    print(f"kgen from {Path(tipo.__file__).parent.parent}, version {version}", file=sys.stderr)
    if stubbed:
        print(f"stubbed modules: {', '.join(stubbed)}", file=sys.stderr)
    models.current_model_name = None
    return types.SimpleNamespace(
        tipo=tipo, dtg=dtg, formatter=formatter, metainfo=metainfo, models=models
    )


# --------------------------------------------------------------------------- input data


def prompt_form(name: str) -> str:
    """danbooru name -> the form written in prompts (spaces, except names under 4 chars)."""
    return name if len(name) < 4 else name.replace("_", " ")


def normalize_caption(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Pools:
    special: list[str]
    quality: list[str]
    rating: list[str]
    general: list[str]
    artist: list[str]
    characters: list[str]
    copyrights: list[str]
    meta: list[str]
    captions_short: list[str]
    captions_long: list[str]
    # Subsets whose category lookup in kgen's seperate_tags is unambiguous.
    parse_special: list[str]
    parse_quality: list[str]
    parse_rating: list[str]
    parse_general: list[str]
    parse_general_underscore: list[str]


def load_pools(data_dir: Path, kgen: types.SimpleNamespace) -> Pools:
    by_cat: dict[str, list[tuple[int, str]]] = {}
    with open(data_dir / "tags" / "danbooru.csv", encoding="utf-8", newline="") as f:
        for name, cat, count, _aliases in csv.reader(f):
            by_cat.setdefault(cat, []).append((-int(count), name))
    for rows in by_cat.values():
        rows.sort()

    def top(cat: str, n: int) -> list[str]:
        return [name for _, name in by_cat[cat][:n]]

    meta_info = kgen.metainfo
    special = list(meta_info.SPECIAL)
    quality = list(meta_info.POSSIBLE_QUALITY_TAGS)
    rating = list(meta_info.RATING_TAGS)
    reserved = set(special) | set(quality) | set(rating)

    general = [
        prompt_form(n)
        for n in top("0", 4000)
        if prompt_form(n) not in reserved and not is_explicit(n)
    ]

    # kgen's own category lists (artist, characters, copyrights, meta).
    listed: set[str] = set()
    for key, names in kgen.formatter.tag_lists.items():
        if key not in {"special", "quality", "rating"}:
            listed |= names

    def unambiguous(tag: str) -> bool:
        return tag not in listed and tag.replace("_", " ") not in listed

    def safe_end(tag: str) -> bool:
        # `.strip("</s>")` in parse_tipo_result eats these characters at the end of the text.
        return not tag.endswith(("s", "<", ">", "/"))

    parse_general = [
        t
        for t in [prompt_form(n) for n in top("0", 6000)] + NON_ASCII_TAGS
        if t not in reserved and unambiguous(t) and safe_end(t) and not is_explicit(t)
    ]
    parse_general_underscore = [
        n
        for n in top("0", 6000)
        if "_" in n and len(n) >= 4 and prompt_form(n) in parse_general and unambiguous(n)
    ]

    coco_path = data_dir / "captions" / "coco_captions_val2017.json.gz"
    with gzip.open(coco_path, "rt", encoding="utf-8") as f:
        coco = json.load(f)
    captions_short = [
        normalize_caption(a["caption"]) for a in sorted(coco["annotations"], key=lambda a: a["id"])
    ]
    captions_long = []
    with open(data_dir / "captions" / "dpg_bench_prompts.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                captions_long.append(normalize_caption(json.loads(line)["prompt"]))
    captions_short = [c for c in captions_short if c]
    captions_long = [c for c in captions_long if c]

    return Pools(
        special=special,
        quality=quality,
        rating=rating,
        general=general + NON_ASCII_TAGS,
        artist=[prompt_form(n) for n in top("1", 3000)],
        characters=[prompt_form(n) for n in top("4", 3000)],
        copyrights=[prompt_form(n) for n in top("3", 1500)],
        meta=[prompt_form(n) for n in top("5", 400) if not is_explicit(n)],
        captions_short=captions_short,
        captions_long=captions_long,
        parse_special=[t for t in special if unambiguous(t) and safe_end(t)],
        parse_quality=[t for t in quality if unambiguous(t) and safe_end(t)],
        parse_rating=[t for t in rating if unambiguous(t) and safe_end(t)],
        parse_general=parse_general,
        parse_general_underscore=parse_general_underscore,
    )


# --------------------------------------------------------------------------- random inputs


def pick(rng: random.Random, pool: list[str], lo: int, hi: int) -> list[str]:
    """lo..hi distinct items from pool, in random order."""
    return rng.sample(pool, rng.randint(lo, hi))


def random_caption(rng: random.Random, pools: Pools) -> str:
    r = rng.random()
    if r < 0.55:
        return rng.choice(pools.captions_short)
    if r < 0.85:
        return rng.choice(pools.captions_long)
    return rng.choice(EXTRA_CAPTIONS)


def random_aspect_ratio(rng: random.Random) -> float | None:
    r = rng.random()
    if r < 0.3:
        return None
    if r < 0.85:
        return rng.choice(ASPECT_RATIOS)
    return round(rng.uniform(0.3, 3.0), 4)


def category_state(rng: random.Random) -> str:
    """missing key, present-but-empty list, or filled."""
    r = rng.random()
    if r < 0.25:
        return "missing"
    if r < 0.4:
        return "empty"
    return "filled"


def random_tag_map(
    rng: random.Random,
    pools: Pools,
    *,
    with_tags: bool,
    for_parse: bool = False,
) -> dict[str, list[str]]:
    """A tag map with random subsets; with_tags decides whether special+general is non-empty."""
    general_pool = pools.parse_general if for_parse else pools.general
    special_pool = pools.parse_special if for_parse else pools.special
    quality_pool = pools.parse_quality if for_parse else pools.quality
    rating_pool = pools.parse_rating if for_parse else pools.rating
    sources: dict[str, Callable[[], list[str]]] = {
        "special": lambda: pick(rng, special_pool, 1, 2),
        "general": lambda: pick(rng, general_pool, 1, 14),
        "characters": lambda: pick(rng, pools.characters, 1, 2),
        "copyrights": lambda: pick(rng, pools.copyrights, 1, 2),
        "artist": lambda: pick(rng, pools.artist, 1, 2),
        "meta": lambda: pick(rng, pools.meta, 1, 3),
        "quality": lambda: pick(rng, quality_pool, 1, 3),
        "rating": lambda: pick(rng, rating_pool, 1, 1),
    }
    tag_map: dict[str, list[str]] = {}
    for cat in TAG_MAP_CATEGORIES:
        state = category_state(rng)
        if cat in {"special", "general"} and not with_tags:
            state = rng.choice(["missing", "empty"])
        if state == "empty":
            tag_map[cat] = []
        elif state == "filled":
            tag_map[cat] = sources[cat]()
    if with_tags and not (tag_map.get("special") or tag_map.get("general")):
        tag_map["general"] = sources["general"]()
    if not for_parse and tag_map.get("general") and rng.random() < 0.1:
        # a few raw danbooru names (underscores kept) as a user might type them
        tag_map["general"].append(rng.choice(["long_hair", "o_o", "^_^", "looking_at_viewer"]))
    return tag_map


# --------------------------------------------------------------------------- TIPO prompt


def tipo_expected(
    kgen: types.SimpleNamespace,
    tag_map: dict[str, list[str]],
    nl_prompt: str,
    aspect_ratio: float | None,
    add_quality: bool,
    task: str | None,
    length: str,
    expand: bool,
    gen_meta: bool,
) -> str:
    kgen.models.current_model_name = None
    meta, _ops, general, nl = kgen.tipo.parse_tipo_request(
        tag_map, nl_prompt, add_quality=add_quality
    )
    if aspect_ratio is not None:
        meta["aspect_ratio"] = f"{aspect_ratio:.1f}"
    return kgen.tipo.apply_tipo_prompt(meta, general, nl, task, length, expand, gen_meta)


def tipo_case(
    kgen: types.SimpleNamespace,
    tag_map: dict[str, list[str]],
    nl_prompt: str,
    aspect_ratio: float | None,
    add_quality: bool,
    task: str | None,
    length: str,
    expand: bool,
    gen_meta: bool,
) -> dict[str, Any]:
    return {
        "tag_map": tag_map,
        "nl_prompt": nl_prompt,
        "aspect_ratio": aspect_ratio,
        "add_quality": add_quality,
        "task": task,
        "length": length,
        "expand": expand,
        "gen_meta": gen_meta,
        "expected": tipo_expected(
            kgen, tag_map, nl_prompt, aspect_ratio, add_quality, task, length, expand, gen_meta
        ),
    }


SPEC_EXAMPLE_TAG_MAP = {
    "special": ["1girl"],
    "characters": ["hatsune miku"],
    "copyrights": ["vocaloid"],
    "artist": ["ningen mame"],
    "quality": ["masterpiece", "newest"],
    "meta": ["absurdres"],
    "rating": ["sensitive"],
    "general": ["long hair", "twintails", "smile"],
}


def gen_tipo_inputs(
    kgen: types.SimpleNamespace, pools: Pools, rng: random.Random
) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    # Every task x expand/generate x gen_meta x with/without NL x with/without tags.
    for task, expand, gen_meta, has_nl, has_tags in itertools.product(
        TASKS, [True, False], [False, True], [False, True], [False, True]
    ):
        for _ in range(4):
            tag_map = random_tag_map(rng, pools, with_tags=has_tags)
            nl = random_caption(rng, pools) if has_nl else ""
            cases.append(
                tipo_case(
                    kgen,
                    tag_map,
                    nl,
                    random_aspect_ratio(rng),
                    rng.random() < 0.75,
                    task,
                    rng.choice(LENGTHS),
                    expand,
                    gen_meta,
                )
            )

    # Targeted cases.
    cases.append(tipo_case(kgen, SPEC_EXAMPLE_TAG_MAP, "", 0.7, True, None, "long", True, False))
    cases.append(
        tipo_case(kgen, SPEC_EXAMPLE_TAG_MAP, "", 0.7, True, "tag_to_long", "short", False, True)
    )
    ganyu = {
        "special": ["1girl"],
        "characters": ["ganyu (genshin impact)"],
        "copyrights": ["genshin impact"],
        "general": ["horns", "blue hair", "o_o", "^_^", "café", "初音ミク"],
        "rating": ["general"],
    }
    for task in TASKS:
        cases.append(
            tipo_case(
                kgen,
                ganyu,
                "A girl with goat horns stands in a snowy field, smiling: it's calm.",
                1.777,
                True,
                task,
                "short",
                task is None or task.endswith("tag"),
                task is not None and task.startswith("short"),
            )
        )
    for ar in ASPECT_RATIO_EDGES:
        cases.append(
            tipo_case(kgen, {"general": ["solo", "smile"]}, "", ar, True, None, "long", True, False)
        )
    for task, expand in itertools.product(["tag_to_long", "short_to_tag_to_long"], [True, False]):
        cases.append(tipo_case(kgen, {}, "", None, True, task, "long", expand, False))
    # add_quality off while quality tags are given, and quality present but empty.
    full = {cat: SPEC_EXAMPLE_TAG_MAP[cat] for cat in TAG_MAP_CATEGORIES}
    cases.append(tipo_case(kgen, full, "", 1.0, False, None, "very_long", True, True))
    cases.append(
        tipo_case(kgen, {**full, "quality": []}, "", 1.0, True, None, "very_short", False, False)
    )
    # special tags only; meta only; whitespace-only NL.
    cases.append(
        tipo_case(
            kgen, {"special": ["2girls", "1boy"]}, "", 0.5625, True, None, "short", True, False
        )
    )
    cases.append(
        tipo_case(
            kgen,
            {"meta": ["highres"], "rating": ["safe"]},
            "",
            None,
            True,
            "tag_to_long",
            "long",
            False,
            True,
        )
    )
    for task in ["tag_to_long", "short_to_tag"]:
        cases.append(
            tipo_case(kgen, {"general": ["smile"]}, "   ", None, True, task, "long", False, False)
        )
    return cases


# --------------------------------------------------------------------------- operations


def gen_tipo_operations(
    kgen: types.SimpleNamespace, pools: Pools, rng: random.Random
) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []

    def case(
        tag_map: dict[str, list[str]],
        nl: str,
        expand_tags: bool,
        expand_prompt: bool,
        extra_nl: bool,
        tag_first: bool,
        tag_len: str,
        nl_len: str,
    ) -> dict[str, Any]:
        kgen.models.current_model_name = None
        _meta, operations, _general, _nl = kgen.tipo.parse_tipo_request(
            tag_map,
            nl,
            expand_tags=expand_tags,
            expand_prompt=expand_prompt,
            generate_extra_nl_prompt=extra_nl,
            tag_first=tag_first,
            tag_length_target=tag_len,
            nl_length_target=nl_len,
        )
        return {
            "tag_map": tag_map,
            "nl_prompt": nl,
            "expand_tags": expand_tags,
            "expand_prompt": expand_prompt,
            "generate_extra_nl_prompt": extra_nl,
            "tag_first": tag_first,
            "tag_length_target": tag_len,
            "nl_length_target": nl_len,
            "expected": [list(op) if op is not None else None for op in operations],
        }

    lengths = ["", *LENGTHS]
    for (has_tags, has_nl), et, ep, extra, tf in itertools.product(
        [(False, False), (True, False), (False, True), (True, True)],
        [True, False],
        [True, False],
        [True, False],
        [True, False],
    ):
        for _ in range(2):
            tag_map = random_tag_map(rng, pools, with_tags=has_tags)
            nl = random_caption(rng, pools) if has_nl else ""
            cases.append(
                case(tag_map, nl, et, ep, extra, tf, rng.choice(lengths), rng.choice(lengths))
            )
    # Whitespace-only inputs count as empty; special tags alone count as tags.
    for et, ep in itertools.product([True, False], [True, False]):
        cases.append(case({"general": ["smile"]}, "  ", et, ep, True, True, "short", "long"))
        cases.append(case({"general": [" "]}, "A cat.", et, ep, True, False, "", "very_long"))
        cases.append(case({"special": ["1girl"]}, "A girl.", et, ep, True, False, "long", ""))
        cases.append(
            case({"characters": ["hatsune miku"]}, "", et, ep, False, True, "very_short", "short")
        )
    return cases


# --------------------------------------------------------------------------- parse


def sentences(rng: random.Random, pools: Pools, lo: int, hi: int) -> str:
    n = rng.randint(lo, hi)
    out = [rng.choice(NL_SENTENCES) for _ in range(n)]
    if rng.random() < 0.5:
        cap = rng.choice(pools.captions_short).rstrip(".")
        out.insert(rng.randrange(len(out) + 1), cap + ".")
    return " ".join(out)


def nl_value(rng: random.Random, pools: Pools, multiline_ok: bool) -> str:
    """A short/long value; sometimes spread over several lines."""
    text = sentences(rng, pools, 1, 4)
    if multiline_ok and text.count(". ") >= 1 and rng.random() < 0.3:
        parts = text.split(". ")
        cut = rng.randrange(1, len(parts))
        text = ". ".join(parts[:cut]) + ".\n" + ". ".join(parts[cut:])
    elif multiline_ok and rng.random() < 0.06:
        text += "\nThe sign reads: open all night."
    return text


def more_tags(rng: random.Random, pools: Pools, existing: list[str]) -> list[str]:
    tags = pick(rng, pools.parse_general, 2, 12)
    if rng.random() < 0.15:
        tags.insert(rng.randrange(len(tags) + 1), rng.choice(pools.parse_quality))
    if rng.random() < 0.1:
        tags.insert(rng.randrange(len(tags) + 1), rng.choice(pools.parse_rating))
    if rng.random() < 0.1:
        tags.insert(0, rng.choice(pools.parse_special))
    if rng.random() < 0.15:
        tags.insert(rng.randrange(len(tags) + 1), rng.choice(pools.parse_general_underscore))
    if existing and rng.random() < 0.1:
        tags.append(rng.choice(existing))
    return tags


CONTENT_KEYS = ["tag", "short", "long"]
META_LINE_KEYS = ["artist", "characters", "copyrights", "rating", "quality", "meta"]
KNOWN_KEYS = {*CONTENT_KEYS, *META_LINE_KEYS, "aspect_ratio", "target"}


def meta_value(rng: random.Random, pools: Pools, key: str) -> str:
    pool = {
        "artist": pools.artist,
        "characters": pools.characters,
        "copyrights": pools.copyrights,
        "rating": pools.parse_rating,
        "quality": pools.parse_quality,
        "meta": pools.meta,
    }[key]
    return ", ".join(pick(rng, pool, 1, 2))


def strip_safe(text: str) -> bool:
    """True when kgen's character-set strip only removes the real <s> / </s> tokens."""
    clean = text.removeprefix("<s>").removesuffix("</s>").strip()
    return text.strip("<s>").strip("</s>").strip() == clean


LINE_KEY = re.compile(r"^([^:\n]+):", re.MULTILINE)


def field_value(rng: random.Random, pools: Pools, key: str, existing: list[str]) -> str:
    if key == "tag":
        return ", ".join(more_tags(rng, pools, existing))
    return nl_value(rng, pools, True)


def build_parse_output(kgen: types.SimpleNamespace, pools: Pools, rng: random.Random) -> str:
    """A TIPO prompt followed by a plausible model continuation."""
    task = rng.choice(TASKS)
    expand = rng.random() < 0.5
    gen_meta = rng.random() < 0.4
    length = rng.choice(LENGTHS)
    tag_map = random_tag_map(rng, pools, with_tags=rng.random() < 0.8, for_parse=True)
    nl = ""
    if task is not None and rng.random() < 0.75:
        nl = sentences(rng, pools, 1, 3)
    aspect = random_aspect_ratio(rng)
    prompt = tipo_expected(kgen, tag_map, nl, aspect, True, task, length, expand, gen_meta)
    fields = task.split("_to_") if task else ["tag"]
    present_tags = tag_map.get("special", []) + tag_map.get("general", [])

    out = prompt
    last_key = prompt.rsplit("\n", 1)[-1].split(":", 1)[0]
    written = set(LINE_KEY.findall(prompt))
    if not expand:
        # generate mode: the prompt ends with "KEY:" and the model writes the value.
        if last_key == "tag":
            out += " " + field_value(rng, pools, "tag", present_tags)
        elif rng.random() < 0.08:
            out += " <|empty|>"
        else:
            out += " " + field_value(rng, pools, last_key, [])
    elif last_key == "tag":
        out += ", " + field_value(rng, pools, "tag", present_tags)
    elif last_key in {"short", "long"}:
        out += " " + sentences(rng, pools, 1, 2)
    else:
        # nothing to continue: the prompt ends at the target line; the model writes the field.
        out += f"\n{fields[-1]}: {field_value(rng, pools, fields[-1], [])}"
    written.add(last_key)

    extra: list[str] = []
    for key in fields:
        if key not in written and rng.random() < 0.5:
            extra.append(f"{key}: {field_value(rng, pools, key, present_tags)}")
    if rng.random() < 0.15:
        key = rng.choice(CONTENT_KEYS)
        extra.append(f"{key}: {field_value(rng, pools, key, [])}")
    if gen_meta:
        missing = [k for k in META_LINE_KEYS if k not in written]
        for key in rng.sample(missing, rng.randint(0, len(missing))):
            extra.insert(rng.randrange(len(extra) + 1), f"{key}: {meta_value(rng, pools, key)}")
    for line in extra:
        out += "\n" + line
    if rng.random() < 0.5:
        out += "</s>"
    if rng.random() < 0.2:
        out = "<s>" + out
    return out


def observed_oddities(output: str, expected: dict[str, Any]) -> list[str]:
    """Describe what in this case departs from a plain reading of the lines."""
    notes = []
    text = output.removeprefix("<s>").removesuffix("</s>")
    seen: dict[str, int] = {}
    tag_line_seen = False
    for line in text.split("\n"):
        match = LINE_KEY.match(line)
        if not match:
            notes.append("a value continues on a line without a colon (kept in that value)")
            continue
        key = match.group(1).strip()
        seen[key] = seen.get(key, 0) + 1
        value = line[match.end() :].strip()
        if key not in KNOWN_KEYS:
            notes.append(f"a continuation line containing ':' becomes its own key {key!r}")
        if key == "tag":
            tag_line_seen = True
        elif key in META_LINE_KEYS and tag_line_seen and seen[key] == 1:
            parsed = [v.strip() for v in value.split(",") if v.strip()]
            if expected.get(key) != parsed:
                notes.append(
                    f"{key!r} line after the tag line is ignored: the tag line already set "
                    "every category key (to [] when it had no such tags)"
                )
        if key in {"short", "long"} and value in {"", "<|empty|>"}:
            notes.append(
                f"empty or '<|empty|>' {key!r} value is skipped (a later {key!r} line would count)"
            )
    for key, count in seen.items():
        if count > 1:
            notes.append(f"key {key!r} appears {count} times")
    tags = expected.get("tag", [])
    if any("_" in t and len(t) >= 4 for t in tags):
        notes.append("underscored tag: kept raw in 'tag', written with spaces in its category")
    if len(set(tags)) != len(tags):
        notes.append("a repeated tag is kept twice (no dedup)")
    return sorted(set(notes))


def gen_tipo_parse(
    kgen: types.SimpleNamespace, pools: Pools, rng: random.Random
) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    while len(cases) < 160:
        output = build_parse_output(kgen, pools, rng)
        if not strip_safe(output):
            continue
        expected = kgen.tipo.parse_tipo_result(output)
        case: dict[str, Any] = {"output": output, "expected": expected}
        notes = observed_oddities(output, expected)
        if notes:
            case["note"] = "; ".join(notes)
        cases.append(case)
    return cases


# --------------------------------------------------------------------------- format


def gen_format(
    kgen: types.SimpleNamespace, pools: Pools, rng: random.Random
) -> list[dict[str, Any]]:
    templates: list[tuple[str | None, str]] = list(kgen.metainfo.TIPO_DEFAULT_FORMAT.items())
    custom = [
        "<|quality|>, <|special|>, <|general|>, <|rating|>",
        "<|characters|> from <|copyrights|> by <|artist|>, <|general|>, <|quality|>",
        "<|extended|>\n\n<|general|>, <|unknown|>, <|meta|>",
        "<|special|>, <|general|>\n<|generated|>\n<|extended|>",
        "masterpiece, <|general|>,   <|rating|>,\n\n\n\n<|extended|>.",
        "a plain prompt without placeholders",
    ]
    templates += [(None, t) for t in custom]

    def one(name: str | None, template: str, tag_map: dict[str, Any]) -> dict[str, Any]:
        return {
            "tag_map": tag_map,
            "template": template,
            "template_name": name,
            "expected": kgen.formatter.apply_format(tag_map, template),
        }

    def random_nl() -> str:
        r = rng.random()
        if r < 0.35:
            return ""
        text = random_caption(rng, pools)
        return text.rstrip(".") if rng.random() < 0.6 else text

    cases: list[dict[str, Any]] = []
    for name, template in templates:
        runs = 14 if name is not None else 5
        for _ in range(runs):
            tag_map: dict[str, Any] = random_tag_map(rng, pools, with_tags=rng.random() < 0.85)
            tag_map["extended"] = random_nl()
            tag_map["generated"] = random_nl()
            if rng.random() < 0.1:
                del tag_map["generated"]
            cases.append(one(name, template, tag_map))
        # everything empty, and everything missing except the NL keys
        empty = {cat: [] for cat in TAG_MAP_CATEGORIES} | {"extended": "", "generated": ""}
        cases.append(one(name, template, empty))
        cases.append(one(name, template, {"extended": "", "generated": ""}))
    return cases


# --------------------------------------------------------------------------- DTG


def gen_dtg(kgen: types.SimpleNamespace, pools: Pools, rng: random.Random) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    targets = ["", *LENGTHS]

    def one(tag_map: dict[str, list[str]], target: str, ar: float, have_q: bool) -> dict[str, Any]:
        models = kgen.models
        models.current_model_name = "DanTagGen-delta-rev2" if have_q else "DanTagGen-beta"
        assert bool(models.model_have_quality_info[models.current_model_name]) is have_q
        try:
            expected = kgen.dtg.apply_dtg_prompt(tag_map, target, ar)
        finally:
            models.current_model_name = None
        return {
            "tag_map": tag_map,
            "target": target,
            "aspect_ratio": ar,
            "have_quality": have_q,
            "expected": expected,
        }

    for have_q, special_state, quality_state in itertools.product(
        [True, False], ["missing", "empty", "filled"], ["missing", "empty", "filled"]
    ):
        for _ in range(7):
            tag_map = random_tag_map(rng, pools, with_tags=rng.random() < 0.85)
            for cat, state in (("special", special_state), ("quality", quality_state)):
                tag_map.pop(cat, None)
                if state == "empty":
                    tag_map[cat] = []
                elif state == "filled":
                    tag_map[cat] = pick(rng, getattr(pools, cat), 1, 2)
            ar = rng.choice(ASPECT_RATIOS + ASPECT_RATIO_EDGES + [round(rng.uniform(0.3, 3), 4)])
            cases.append(one(tag_map, rng.choice(targets), ar, have_q))
    # Requests with special, general and quality tags: the common case, where
    # presample matches the reference byte for byte (its empty-side deviations
    # are covered above).
    for _ in range(200):
        have_q = rng.random() < 0.6
        tag_map = random_tag_map(rng, pools, with_tags=True)
        tag_map["special"] = pick(rng, pools.special, 1, 2)
        tag_map["quality"] = pick(rng, pools.quality, 1, 3)
        if not tag_map.get("general"):
            tag_map["general"] = pick(rng, pools.general, 1, 12)
        ar = rng.choice(ASPECT_RATIOS + ASPECT_RATIO_EDGES + [round(rng.uniform(0.3, 3), 4)])
        cases.append(one(tag_map, rng.choice(targets), ar, have_q))
    for have_q in (True, False):
        cases.append(one({}, "", 1.0, have_q))
        cases.append(one({"special": ["1girl"]}, "short", 0.5625, have_q))
        cases.append(one({"general": ["solo", "dragon girl", "dragon horns"]}, "long", 1.0, have_q))
    return cases


# --------------------------------------------------------------------------- output


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def templates_json(kgen: types.SimpleNamespace) -> dict[str, Any]:
    m = kgen.metainfo
    return {
        "reference": f"tipo-kgen=={REFERENCE_VERSION}",
        "TIPO_DEFAULT_FORMAT": dict(m.TIPO_DEFAULT_FORMAT),
        "TARGET": dict(m.TARGET),
        "TARGET_TIPO": dict(m.TARGET_TIPO),
        "TARGET_TIPO_MAX": dict(m.TARGET_TIPO_MAX),
        "TARGET_TIPO_NL": dict(m.TARGET_TIPO_NL),
        "TARGET_TIPO_NL_MAX": dict(m.TARGET_TIPO_NL_MAX),
        "SPECIAL": list(m.SPECIAL),
        "POSSIBLE_QUALITY_TAGS": list(m.POSSIBLE_QUALITY_TAGS),
        "RATING_TAGS": list(m.RATING_TAGS),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kgen-src",
        type=Path,
        default=None,
        help="directory holding the unpacked tipo-kgen wheel (kgen/ and its .dist-info)",
    )
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/kgen_0.3.1"))
    parser.add_argument(
        "--data",
        type=Path,
        default=here.parent.parent / "shared" / "data",
        help="shared data folder with tags/danbooru.csv and captions/",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    kgen = import_kgen(args.kgen_src)
    pools = load_pools(args.data, kgen)
    args.out.mkdir(parents=True, exist_ok=True)

    generators: list[tuple[str, Callable[..., list[dict[str, Any]]]]] = [
        ("tipo_inputs.jsonl", gen_tipo_inputs),
        ("tipo_operations.jsonl", gen_tipo_operations),
        ("tipo_parse.jsonl", gen_tipo_parse),
        ("format.jsonl", gen_format),
        ("dtg_inputs.jsonl", gen_dtg),
    ]
    for index, (filename, generator) in enumerate(generators):
        # one independent stream per file, so changing one generator leaves the others alone
        rng = random.Random(f"{args.seed}:{index}")
        count = write_jsonl(args.out / filename, generator(kgen, pools, rng))
        print(f"{filename}: {count} cases", file=sys.stderr)
    with open(args.out / "templates.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump(templates_json(kgen), f, ensure_ascii=False, indent=2)
        f.write("\n")
    print("templates.json written", file=sys.stderr)


if __name__ == "__main__":
    main()
