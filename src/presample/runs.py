"""The run layer: one request's journey from prepared input to result, top to bottom.

The TIPO and DanTagGen runs, written as plain sequential code.

A run is a generator: it yields the next ``GenerationJob`` and receives the
``Generation``. It never calls a model itself, so the scheduler can batch the
jobs of many runs into shared forward passes, and tests can drive a run with
any backend.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace

from .bans import BanConstraint, BanMatcher
from .caption_fit import caption_conflicts, caption_fit, tag_words
from .caption_floor import CaptionFloor
from .caption_loops import NoLoops
from .caption_subject import SUBJECT_STRENGTH, CaptionSubject, names_subject
from .categories import SPECIAL_TAGS, Category
from .compose import Draft, format_result, merge_output, reached_minimum
from .contradictions import describes_person, has_person, mentions_person, said
from .count_tags import COUNT_TAGS, MIN_MORE, implied_count_tags
from .dtg import DTG_MIN_TAGS, INPUT_END_TOKEN, dtg_input, parse_dtg_output
from .encoders import flux2_prompt, tags_prompt, text_prompt
from .engine.backend import Constraint, ContextFull, Generation, GenerationJob
from .engine.sampling import Sampling
from .prepare import Prepared
from .rating import rating_level
from .request import PresampleResult, StepResult, TagSet
from .tag_floor import AllOf, FillTags, TagFloor, clashes, consistent, known_only
from .tag_prior import BOOST_TAGS, CooccurrenceTable, TagPrior, draw_tags
from .tagdb import TagDatabase, normalize_key
from .tipo import (
    NL_MIN,
    Step,
    holds_output,
    parse_tipo_output,
    tag_range,
    tipo_input,
)

Run = Generator[GenerationJob, Generation, PresampleResult]

# The reference's retry limits (spec/TIPO.md).
MAX_RETRIES = 10
MAX_SAME_OUTPUTS = 5
MAX_STALLED = 2
"""Model calls in a row that add nothing to the draft before a step gives up: past
where the tag floor can fill a line, the same line comes back every time (`a cat
sitting on a windowsill`, seed 4: seven retries of `tag: coattails` ending in a
fragment the known-tags rule drops, 8 model calls for one tag; now 3)."""
# Fresh draws of a caption from tags when none of a call's draws names the people
# the tags count (``caption_subject.py`` makes that rare: 5% of the first prompts a
# user types, benchmarks/bench_caption_subject.py).
REDRAWS = 1
DTG_MAX_RETRIES = 20
DTG_MAX_SAME_OUTPUTS = 15
# Every caption line, whatever the step: a caption never loops, a word twice in a
# row or a short phrase three times (``caption_loops.py``; the reference lets
# such loops run to the token budget).
CAPTION_LOOPS = NoLoops(frozenset({"short", "long"}))


@dataclass(frozen=True)
class RunOptions:
    sampling: Sampling
    seed: int
    model: str = ""
    engine: str = ""
    """Which engine and precision run the model (the result says so)."""
    quality: bool = True
    """DanTagGen: the model was trained with a quality line."""
    on_step: Callable[[StepResult], None] | None = None
    """Called as each step finishes (streaming)."""


def tipo_run(
    prepared: Prepared,
    db: TagDatabase,
    options: RunOptions,
    prior: CooccurrenceTable | None = None,
) -> Run:
    """Every planned step, each retried until its field reaches the minimum length.

    ``prior``: the co-occurrence table behind the request's ``tag_prior``.
    """
    request = prepared.request
    started = time.perf_counter()
    bans = BanMatcher(prepared.ban_rules(), db.category_of)
    constraint = BanConstraint(bans, prepared.protected()) if bans else None
    rng = random.Random(options.seed) if request.shuffle_new_tags else None
    steps = prepared.steps()
    stated = said(prepared.nl)  # what the user's sentence states ("at night")
    draft = _counted(Draft.start(prepared), prepared, steps, prior, bans)
    draft = _drawn(draft, prepared, steps, prior, bans, db, options.seed, stated)
    details: list[StepResult] = []
    calls = 0
    full: ContextFull | None = None

    for index, step in enumerate(steps):
        gen_meta = request.gen_meta and index == len(steps) - 1
        step_started = time.perf_counter()
        seen_outputs: set[str] = set()
        same = stalled = redrawn = 0
        attempt = 0
        drawn_seeds = 0
        detail = StepResult(task=step.task, length=step.length, expand=step.expand,
                            gen_meta=gen_meta, seed=options.seed, draws=0)  # fmt: skip
        rules = (constraint, _tag_rule(prepared, step, db, options.seed, bans, prior, stated),
                 _caption_rule(prepared, step), CAPTION_LOOPS)  # fmt: skip
        active = [rule for rule in rules if rule is not None]
        step_constraint: Constraint | None = (
            None if not active else active[0] if len(active) == 1 else AllOf(tuple(active))
        )
        boost = (
            _tag_boost(prepared, step, draft, prior, bans) or _caption_lean(prepared, step, draft)
        )
        while True:
            meta = prepared.meta(draft.meta_source())
            tag_line = ", ".join(draft.tag_line_tags())
            text = tipo_input(
                meta,
                tag_line,
                draft.text(),
                step.task,
                step.length,
                expand=step.expand or holds_output(step.task, tag_line, draft.text()),
                gen_meta=gen_meta,
                dialect=prepared.dialect,
            )
            # Retries reseed (seed + attempt) as the reference does; a call that
            # draws several captions uses up as many seeds.
            samples = _caption_samples(step, draft, request.caption_candidates)
            try:
                generation = yield GenerationJob(
                    text, options.sampling, options.seed + drawn_seeds, step_constraint, boost,
                    samples=samples,
                )  # fmt: skip
            except ContextFull as exc:
                if not calls:  # the user's own input is too long: theirs to shorten
                    raise
                # The run's own output filled the context (a model that rambles, a
                # long plan): what it wrote so far is kept, not lost to an error.
                full, reached = exc, False
                break
            calls += 1
            drawn_seeds += samples
            # Judged against the tags the draws were given, not the ones each adds:
            # a stock caption would otherwise bring its own matching tags.
            given = _fit_tags(draft)
            words = tag_words(given)
            yours = _yours(prepared, given)
            candidates = []
            for drawn in generation.samples():
                output = parse_tipo_output(text + drawn.text, db.categorize)
                if request.known_tags_only:
                    output = known_only(output, db, prepared.protected())
                earlier = [*draft.tag_line_tags(), *stated]
                output = consistent(output, earlier, prepared.protected())
                merged = merge_output(
                    draft,
                    output,
                    step.task,
                    tag_length=request.tag_length,
                    nl_length=request.nl_length,
                    bans=bans,
                    protected=prepared.protected(),
                    rng=rng,
                    dialect=prepared.dialect,
                )
                reached = reached_minimum(merged, step.task, request.tag_length,
                                          request.nl_length, written=output.generated,
                                          dialect=prepared.dialect)  # fmt: skip
                caption = merged.generated
                named = names_subject(caption, given, yours) is not False
                agrees = -caption_conflicts(caption, given)
                fit = caption_fit(caption, words)
                candidates.append((named, agrees, reached, fit, merged, drawn))
            # A draw about the people the tags count (with nobody counted, one naming
            # a thing your own tags name) comes first even when it falls
            # short (a retry extends it), then one that does not contradict their hair
            # and eyes, then one that reaches the length, then the best fit; the
            # first of equals.
            before = draft
            named, _, reached, _, draft, chosen = max(candidates, key=lambda c: c[:4])
            detail = _attempted(detail, text, chosen, attempt, generation.samples())
            if not named and _redraws(prepared, step, before) > redrawn:
                # No draw names the people the tags count (or your things): the caption
                # is about something else, and a retry would only extend it. Draw
                # afresh (new seeds) instead.
                draft = before
                redrawn += 1
                attempt += 1
                continue
            if reached:
                break
            same = same + 1 if chosen.text in seen_outputs else 0
            stalled = stalled + 1 if draft == before else 0
            seen_outputs.add(chosen.text)
            attempt += 1
            if attempt > MAX_RETRIES or same >= MAX_SAME_OUTPUTS or stalled >= MAX_STALLED:
                break
        details.append(
            detail.model_copy(
                update={"seconds": time.perf_counter() - step_started, "reached_target": reached}
            )
        )
        if options.on_step is not None:
            options.on_step(details[-1])
        if full is not None:
            break

    notes = []
    if full is not None:
        notes.append(
            f"stopped early: the model's context ({full.context} tokens) filled up with what "
            "it wrote; the result holds what was written until then"
        )
    return _result(draft, prepared, details, options, started, notes)


def _counted(
    draft: Draft,
    prepared: Prepared,
    steps: Sequence[Step],
    table: CooccurrenceTable | None,
    bans: BanMatcher,
) -> Draft:
    """The draft with the people-count tag its tag line implies (``count_tags.py``),
    as the request asks, when a step writes tags (a plan that only captions the
    user's tags adds none)."""
    line = draft.tag_line_tags()
    if not (prepared.request.count_tag and table is not None and line) or not any(
        step.task.output == "tag" for step in steps
    ):
        return draft
    implied = implied_count_tags(
        line,
        table,
        _rating_level(prepared),
        characters=prepared.tags.get(Category.CHARACTERS),
        copyrights=prepared.tags.get(Category.COPYRIGHTS),
    )
    implied = [t for t in implied if not (bans and bans.tag_banned(t))]
    if not implied:
        return draft
    special = [*draft.tags.get(Category.SPECIAL, []), *implied]
    return replace(draft, tags={**draft.tags, Category.SPECIAL: special})


def _drawn(
    draft: Draft,
    prepared: Prepared,
    steps: Sequence[Step],
    table: CooccurrenceTable | None,
    bans: BanMatcher,
    db: TagDatabase,
    seed: int,
    stated: frozenset[str],
) -> Draft:
    """The draft with the request's ``tag_draw`` share of the new tags its tag line
    needs drawn from the co-occurrence ``table`` (``tag_prior.draw_tags``), when a
    step writes tags: the model reads them on the line and writes the rest.

    The tags that most often accompany the line's are the ones most likely right,
    and a small model spreads its choices over many it knows less about (validation
    split, 200 items x 2 seeds: new tags' recall 23.0% written by the model alone,
    24.4% with half of them drawn, 25.8% with all; the model card sets the share).
    """
    request = prepared.request
    if not (request.tag_draw > 0 and table is not None) or not any(
        step.task.output == "tag" for step in steps
    ):
        return draft
    line = draft.tag_line_tags()
    count = round(request.tag_draw * max(0, _tag_target(prepared, seed) - len(line)))
    level, names = _rating_level(prepared), _names(prepared)

    def excluded(key: str) -> bool:
        return bool(bans and bans.tag_banned(key)) or (
            request.known_tags_only and not db.is_known(key)
        )

    weights = table.weights(line, level, names=names, excluded=excluded) if count else {}
    if not weights:
        return draft
    protected = prepared.protected()
    have = {k for t in line if (k := normalize_key(t))}
    # Nothing of the request puts a person in the picture: the draw brings one in
    # only where the records put one with these tags at least half the time
    # (`from above, belt, magic circle`: 1girl 0.63; `scenery, mountain, lake` 0.27).
    needs_person = _needs_person(prepared) and (
        max(table.likelihoods(line, level, COUNT_TAGS, names=names).values(), default=0.0)
        < MIN_MORE
    )

    def takes(key: str, drawn: list[str]) -> bool:
        # ``solo`` and ``1girl`` accompany nearly everything in the records.
        # Each drawn tag is likely beside some of the line's; one the records keep
        # apart from another (``kitchen`` after ``street``) makes two pictures.
        return not (needs_person and has_person([key])) and not clashes(
            key, have | set(drawn), protected, stated, needs_person, table.apart
        )

    rng = random.Random(f"tag-draw:{seed}:{prepared.tag_line()}\n{prepared.nl}")
    drawn = draw_tags(weights, count, takes, rng)
    if not drawn:
        return draft
    tags = dict(draft.tags)
    for key in drawn:
        category = Category.SPECIAL if key in SPECIAL_TAGS else Category.GENERAL
        tags[category] = [*tags.get(category, []), key]
    return replace(draft, tags=tags)


def _tag_target(prepared: Prepared, seed: int) -> int:
    """How many tags the line should hold: a count drawn from the requested length's
    range with the run's seed and input, not its minimum: a model trained on real
    prompts ends its lines anywhere in the range, and always stopping at the bottom
    would make every "short" list 18 tags long."""
    # Seeded by the input too, so one seed does not mean one length for every prompt.
    draw = random.Random(f"tag-floor:{seed}:{prepared.tag_line()}\n{prepared.nl}")
    return draw.randint(*tag_range(prepared.request.tag_length, prepared.dialect))


def _needs_person(prepared: Prepared) -> bool:
    """Nothing of the request puts a person in the picture: a person's features wait
    for the line to say there is one (a ramen bowl got "blonde hair, navel")."""
    return not (
        any(describes_person(k) or has_person([k]) for k in prepared.protected())
        or prepared.tags.get(Category.CHARACTERS)
        or mentions_person(prepared.nl)
    )


def _tag_rule(
    prepared: Prepared,
    step: Step,
    db: TagDatabase,
    seed: int,
    bans: BanMatcher,
    table: CooccurrenceTable | None,
    stated: frozenset[str],
) -> TagFloor | None:
    """The tag line's floor (tag-writing steps) and real-tags rule, as the request asks.

    The floor is the line's target count (``_tag_target``). Once the floor overrules
    the model, the line is filled from the co-occurrence ``table`` (``tag_floor.py``).
    """
    request = prepared.request
    minimum = 0
    if request.fill_tag_length and step.task.output == "tag":
        minimum = _tag_target(prepared, seed)
    vocabulary = db if request.known_tags_only else None
    if not minimum and vocabulary is None:
        return None
    banned = bans.tag_banned if bans else None
    fill: FillTags | None = None
    if table is not None and minimum:
        level = _rating_level(prepared)
        names = _names(prepared)
        fill = lambda tags: table.weights(tags, level, names=names, excluded=banned)  # noqa: E731
    protected = prepared.protected()
    apart = table.apart if table is not None else None
    return TagFloor(
        minimum, vocabulary, protected, banned, fill, stated, _needs_person(prepared), apart
    )


def _names(prepared: Prepared) -> list[str]:
    """The request's characters and copyrights, which the co-occurrence prior reads
    as conditions (``hatsune miku`` -> ``twintails``)."""
    return [*prepared.tags.get(Category.CHARACTERS), *prepared.tags.get(Category.COPYRIGHTS)]


def _rating_level(prepared: Prepared) -> int:
    """The request's rating as a level (``rating.py``): the highest it names."""
    ratings = prepared.tags.get(Category.RATING)
    return max((rating_level(r) for r in ratings), default=rating_level(None))


def _tag_boost(
    prepared: Prepared,
    step: Step,
    draft: Draft,
    table: CooccurrenceTable | None,
    bans: BanMatcher,
) -> TagPrior | None:
    """The co-occurrence prior for a step that writes the tag line, as the request asks:
    over the tags the line holds when the step starts, at the request's rating, without
    the tags the request bans."""
    strength = prepared.request.tag_prior
    if table is None or strength <= 0 or step.task.output != "tag":
        return None
    excluded = bans.tag_banned if bans else None
    weights = table.weights(
        draft.tag_line_tags(),
        _rating_level(prepared),
        names=_names(prepared),
        excluded=excluded,
        size=BOOST_TAGS,
    )
    return TagPrior(weights, strength) if weights else None


def _captions_tags(step: Step, draft: Draft) -> bool:
    """Whether the step writes a caption from the tags alone: a user's own text is
    extended, never redrawn or leant on (it already says what it is about)."""
    return step.task.output == "long" and not draft.text()


def _redraws(prepared: Prepared, step: Step, draft: Draft) -> int:
    """Fresh draws a step may make of a caption from tags that names nobody the tags
    count, or none of your things (``REDRAWS``), as the request asks: none when it
    asks for one draw."""
    request = prepared.request
    asked = request.caption_people and request.caption_candidates > 1
    return REDRAWS if asked and _captions_tags(step, draft) else 0


def _caption_lean(prepared: Prepared, step: Step, draft: Draft) -> CaptionSubject | None:
    """The lean towards the people the tags count, or the things the user's own tags
    name, for a caption written from tags alone (``caption_subject.py``), as the
    request asks."""
    if not (prepared.request.caption_people and _captions_tags(step, draft)):
        return None
    tags = _fit_tags(draft)
    return CaptionSubject.for_tags(tags, SUBJECT_STRENGTH, _yours(prepared, tags))


def _yours(prepared: Prepared, tags: list[str]) -> list[str]:
    """The user's own among ``tags``: what a caption with nobody counted should name
    (``caption_subject.subject_words``), as the request asks (``caption_people``);
    none otherwise, nor the tags the model or the draw added."""
    if not prepared.request.caption_people:
        return []
    mine = prepared.protected()
    return [t for t in tags if normalize_key(t) in mine]


def _caption_rule(prepared: Prepared, step: Step) -> CaptionFloor | None:
    """The sentence floor of the caption lines the step writes, as the request asks.

    That is the caption a ``long`` step writes, and the user's text when the step
    continues it (``expand``): the expanded text is the caption the prompt shows.
    """
    request = prepared.request
    fields = {"long"} if step.task.output == "long" else set()
    if step.expand and prepared.nl:
        fields.add("short" if "short" in step.task.fields else "long")
    if not request.fill_nl_length or not fields:
        return None
    return CaptionFloor(frozenset(fields), NL_MIN[request.nl_length])


def dtg_run(prepared: Prepared, db: TagDatabase, options: RunOptions) -> Run:
    """DanTagGen: continue the general tags until the minimum total is reached."""
    request = prepared.request
    started = time.perf_counter()
    bans = BanMatcher(prepared.ban_rules(), db.category_of)
    constraint = BanConstraint(bans, prepared.protected()) if bans else None
    rng = random.Random(options.seed)
    tags = prepared.tags.as_dict()
    base = dtg_input(
        tags,
        request.tag_length,
        request.effective_aspect_ratio() or 1.0,
        quality=options.quality,
    )
    have = {normalize_key(t) for t in prepared.tags.all_tags()}
    target = DTG_MIN_TAGS[request.tag_length]
    extra: list[str] = []
    reached = False
    prompt = base
    last_set: frozenset[str] = frozenset()
    same = 0
    detail = StepResult(
        task="tag", length=request.tag_length, expand=True, seed=options.seed, draws=0
    )
    if prepared.unreadable:
        return _result(Draft.start(prepared), prepared, [], options, started)
    for attempt in range(DTG_MAX_RETRIES + 1):
        generation = yield GenerationJob(
            prompt, options.sampling, options.seed + attempt, constraint
        )
        found = parse_dtg_output(prompt + generation.text)
        extra = [
            t for t in dict.fromkeys(found)
            if normalize_key(t) not in have and not bans.tag_banned(t)
        ]  # fmt: skip
        detail = _attempted(detail, prompt, generation, attempt)
        reached = len(have) + len(extra) >= target
        if reached:
            break
        same = same + 1 if frozenset(extra) == last_set else 0
        last_set = frozenset(extra)
        if same >= DTG_MAX_SAME_OUTPUTS:
            break
        # Feed the tags so far back, shuffled, and let the model continue them.
        shuffled = list(extra)
        rng.shuffle(shuffled)
        prompt = base.split(INPUT_END_TOKEN)[0] + INPUT_END_TOKEN + ", ".join(shuffled)

    draft = Draft.start(prepared)
    new_by_category = db.categorize(extra)
    merged = {
        c: draft.tags.get(c, []) + [t for t in new_by_category[c] if t not in draft.tags.get(c, [])]
        for c in Category
    }
    draft = Draft(tags=merged, extended=draft.extended)
    detail = detail.model_copy(
        update={"seconds": time.perf_counter() - started, "reached_target": reached}
    )
    if options.on_step is not None:
        options.on_step(detail)
    return _result(draft, prepared, [detail], options, started)


def _attempted(
    detail: StepResult,
    prompt: str,
    chosen: Generation,
    attempt: int,
    drawn: Sequence[Generation] = (),
) -> StepResult:
    """The step's record after one more model call (``drawn``: all its samples)."""
    drawn = drawn or (chosen,)
    return detail.model_copy(
        update={
            "model_input": detail.model_input or prompt,
            "last_input": prompt,
            "model_output": chosen.text,
            "attempts": attempt + 1,
            "draws": detail.draws + len(drawn),
            "input_tokens": detail.input_tokens + sum(g.prompt_tokens for g in drawn),
            "generated_tokens": detail.generated_tokens + sum(g.new_tokens for g in drawn),
        }
    )


def _caption_samples(step: Step, draft: Draft, candidates: int) -> int:
    """How many captions to draw: several only when one is written from tags alone."""
    # A retry continues the caption it has (``holds_output``): one draw.
    return candidates if _captions_tags(step, draft) else 1


def _fit_tags(draft: Draft) -> list[str]:
    """The tags a caption about the draft should talk about (``caption_fit``)."""
    return [t for c in (Category.SPECIAL, Category.GENERAL, Category.CHARACTERS)
            for t in draft.tags.get(c, [])]  # fmt: skip


def _result(
    draft: Draft,
    prepared: Prepared,
    details: list[StepResult],
    options: RunOptions,
    started: float,
    notes: Sequence[str] = (),
) -> PresampleResult:
    mine = set(prepared.user_order)
    tags = TagSet(**{c.value: v for c, v in draft.tags.items()})
    added = [t for c in Category for t in draft.tags.get(c, []) if t not in mine]
    prose = text_prompt(draft.extended, draft.generated)
    return PresampleResult(
        tags=tags,
        extended=draft.extended,
        generated=draft.generated,
        prompt=format_result(draft, prepared),
        user_prompt=format_result(Draft.start(prepared), prepared, user_only=True),
        seed=options.seed,
        model=options.model,
        engine=options.engine,
        steps=details,
        timings={
            "total_seconds": time.perf_counter() - started,
            "generated_tokens": float(sum(d.generated_tokens for d in details)),
        },
        tags_prompt=tags_prompt(tags, added, prepared.request.target),
        text_prompt=prose,
        flux2_prompt=flux2_prompt(tags, prose),
        added=added,
        notes=[*_notes(prepared), *notes],
    )


def _notes(prepared: Prepared) -> list[str]:
    if not prepared.unread:
        return []
    shown = ", ".join(repr(t if len(t) <= 40 else t[:39] + "…") for t in prepared.unread)
    return [
        f"kept as typed, not read by the model (it reads English and Danbooru tags): {shown}"
    ]
