"""``RefineSession``: the interactive loop of seed 004 (UF-FGTG) on a TIPO model.

Each round draws k candidates that extend the current prompt (about n new
tokens, one TIPO length step, or one shot of up to N tokens); the user picks
one, which becomes the current prompt, and may undo or re-draw. The k draws of
a round share forward passes: they go to the model as one batch through the
same scheduler ``Presampler.presample_many`` uses. Drawing is a ``Plan``
(``proposing``): it says which runs it needs and uses their results, so a
server can queue them beside other requests (``server/refine_api.py``) and
``propose`` drives it on the spot.

Reproducible: every candidate's seed is derived from the session seed, the
round, the re-draw count and the draw number, and the engine gives a row the
same tokens in any batch (engine/invariant.py), so the same seed and the same
picks give the same candidates in a fresh process.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Generator
from typing import Any

from pydantic import ValidationError

from ..bans import BanConstraint, BanMatcher
from ..categories import Category
from ..engine.backend import Generation, GenerationJob
from ..engine.scheduler import Plan, Run, drive
from ..formatting import escape
from ..insertion import Anchors, anchors, insert, text_added
from ..lengths import sentence_count
from ..prepare import Prepared
from ..presampler import Presampler
from ..request import (
    MAX_PROMPT_CHARS,
    MAX_TAG_CHARS,
    PresampleRequest,
    PresampleResult,
    describe_validation_error,
)
from ..syntax import PromptSyntaxError, parse_prompt
from ..tagdb import normalize_key
from ..tipo import NL_MIN, TAG_MIN, Length
from .extend import (
    Extension,
    continued_tags,
    continued_words,
    dtg_opening,
    next_tag_length,
    safe_tag,
    same_key,
    tag_count,
    tipo_opening,
)
from .models import MAX_ROUNDS, Candidate, RefineError, RefineOptions, RefineState

MAX_BATCHES = 4
"""A round draws again for duplicates or empty draws at most this many times."""
SEED_RANGE = 2**32
_CACHE_ROUNDS = 64


def derive_seed(session_seed: int, round_: int, redraw: int, draw: int) -> int:
    """A candidate's seed: a hash, so nearby session seeds give unrelated draws."""
    key = f"presample-refine/{session_seed}/{round_}/{redraw}/{draw}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % SEED_RANGE


class RefineSession:
    """One user's refine loop over a loaded ``Presampler``.

    Not thread-safe: a server keeps one session per user and calls it from
    one worker at a time (the model itself is shared).
    """

    def __init__(
        self, presampler: Presampler, prompt: str, options: RefineOptions | None = None
    ) -> None:
        self.presampler = presampler
        self.options = options or RefineOptions()
        self._start = self._checked_prompt(prompt)
        self.seed: int = (
            self.options.seed if self.options.seed >= 0 else secrets.randbelow(SEED_RANGE)
        )
        self._picks: list[str] = []
        self._redraw = 0
        self._candidates: list[Candidate] | None = None
        self._cache: dict[tuple[int, int, str], list[Candidate]] = {}

    # ------------------------------------------------------------------ state

    @property
    def prompt(self) -> str:
        """The current prompt: the start, or the last pick."""
        return self._picks[-1] if self._picks else self._start

    @property
    def history(self) -> list[str]:
        """Every prompt so far, the start first and the current one last."""
        return [self._start, *self._picks]

    @property
    def round(self) -> int:
        """How many picks led to the current prompt."""
        return len(self._picks)

    def state(self) -> RefineState:
        return RefineState(
            start=self._start,
            options=self.options,
            seed=self.seed,
            picks=list(self._picks),
            round=self.round,
            redraw=self._redraw,
            candidates=None if self._candidates is None else list(self._candidates),
        )

    @classmethod
    def from_state(
        cls, presampler: Presampler, state: RefineState | dict[str, Any]
    ) -> RefineSession:
        """Continue a saved session; the state is validated like any user input."""
        if not isinstance(state, RefineState):
            try:
                state = RefineState.model_validate(state)
            except ValidationError as exc:
                problem = describe_validation_error(exc)
                raise RefineError(f"invalid refine state: {problem}") from None
        options = state.options.model_copy(update={"seed": state.seed})
        session = cls(presampler, state.start, options)
        session._picks = [session._checked_prompt(p) for p in state.picks]
        session._redraw = state.redraw
        if state.candidates is not None:
            session._candidates = [
                c.model_copy(update={"prompt": session._checked_prompt(c.prompt)})
                for c in state.candidates
            ]
        return session

    # ---------------------------------------------------------------- actions

    def propose(self) -> list[Candidate]:
        """The candidates for the current prompt (drawn once per round and re-draw)."""
        return drive(self.proposing(), self.presampler.run_many)

    def proposing(self) -> Plan[list[Candidate]]:
        """``propose`` as a plan: the runs it needs, for the caller to drive."""
        if self._candidates is None:
            key = (self.round, self._redraw, self.prompt)
            if key not in self._cache:
                candidates = yield from self._drawing()
                if len(self._cache) >= _CACHE_ROUNDS:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = candidates
            self._candidates = self._cache[key]
        return list(self._candidates)

    def redraw(self) -> list[Candidate]:
        """New candidates for the same prompt (the next seeds of this round)."""
        self.next_draw()
        return self.propose()

    def next_draw(self) -> None:
        """Forget this round's candidates; the next ``propose`` draws new ones."""
        self._redraw += 1
        self._candidates = None

    def pick(self, index: int) -> str:
        """Accept candidate ``index`` (0-based); it becomes the current prompt."""
        candidates = self.propose()
        if not candidates:
            raise RefineError("there is no candidate to pick: re-draw or stop")
        if not 0 <= index < len(candidates):
            raise RefineError(f"no candidate {index}: pick 0 to {len(candidates) - 1}")
        if self.round >= MAX_ROUNDS:
            raise RefineError(f"a session has at most {MAX_ROUNDS} rounds; start a new one")
        self._picks.append(candidates[index].prompt)
        self._redraw = 0
        self._candidates = None
        return self.prompt

    def undo(self) -> str:
        """Go back one pick; the previous round's candidates come back unchanged."""
        if not self._picks:
            raise RefineError("nothing to undo: no candidate has been picked yet")
        self._picks.pop()
        self._redraw = 0
        self._candidates = None
        return self.prompt

    # --------------------------------------------------------------- drawing

    def _checked_prompt(self, prompt: str) -> str:
        if not isinstance(prompt, str):
            raise RefineError("the prompt must be a string")
        prompt = prompt.strip()
        if not prompt:
            raise RefineError("the prompt is empty: give a few tags or a short sentence")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise RefineError(f"the prompt is longer than {MAX_PROMPT_CHARS} characters")
        if "\x00" in prompt:
            raise RefineError("the prompt contains a NUL character")
        parsed = parse_prompt(prompt, is_known_tag=self.presampler.db.is_known)
        if anchors(prompt, parsed) is None:
            raise RefineError("nothing to refine: the prompt has no tags or text")
        return prompt

    def _prepare(self, prompt: str, **changes: Any) -> Prepared:
        opts = self.options
        try:
            request = PresampleRequest(
                prompt=prompt, sfw=opts.sfw, ban=opts.ban, aspect_ratio=opts.aspect_ratio,
                target=opts.target, **changes,
            )  # fmt: skip
        except ValidationError as exc:
            raise RefineError(describe_validation_error(exc)) from None
        return self.presampler.prepare(request)

    def _seeds(self, start: int, count: int, used: set[int]) -> tuple[list[int], int]:
        seeds: list[int] = []
        draw = start
        while len(seeds) < count:
            seed = derive_seed(self.seed, self.round, self._redraw, draw)
            draw += 1
            if seed not in used:
                used.add(seed)
                seeds.append(seed)
        return seeds, draw

    def _drawing(self) -> Plan[list[Candidate]]:
        prompt = self.prompt
        prepared = self._prepare(prompt)
        where = anchors(prompt, prepared.parsed)
        assert where is not None  # checked when the prompt was accepted
        base_tokens = self.presampler.backend.count_tokens(prompt)
        have = {same_key(normalize_key(t)) for t in prepared.user_order}
        have |= {same_key(normalize_key(t)) for t in prepared.tags.all_tags()}
        candidates: list[Candidate] = []
        seen: set[tuple[str, ...]] = set()
        used: set[int] = set()
        draw = 0
        for batch in range(MAX_BATCHES):
            need = self.options.candidates - len(candidates)
            if need <= 0:
                break
            seeds, draw = self._seeds(draw, need, used)
            extensions = yield from (
                self._by_length(prompt, seeds, have)
                if self.options.by_length()
                else self._by_tokens(prepared, seeds, have)
            )
            errors = [e for e in extensions if isinstance(e, Exception)]
            if batch == 0 and len(errors) == len(extensions):
                raise errors[0]
            for seed, extension in zip(seeds, extensions, strict=True):
                if isinstance(extension, Exception):
                    continue
                candidate = self._candidate(
                    prompt, where, extension, seed, base_tokens, len(candidates)
                )
                if candidate is None:
                    continue
                key = tuple(sorted(normalize_key(a) for a in candidate.added))
                if key in seen:
                    continue
                seen.add(key)
                candidates.append(candidate)
        return candidates

    def _candidate(
        self,
        prompt: str,
        where: Anchors,
        extension: Extension,
        seed: int,
        base_tokens: int,
        index: int,
    ) -> Candidate | None:
        if extension.is_empty():
            return None
        target = self.options.target
        text = escape(extension.text, target)
        tags = [escape(t, target) for t in extension.tags]
        extended = insert(prompt, where, text, tags)
        if len(extended) > MAX_PROMPT_CHARS:
            return None
        try:
            # What the next round (and the user's UI) will read must still parse.
            parse_prompt(extended)
        except PromptSyntaxError:
            return None
        tokens = max(self.presampler.backend.count_tokens(extended) - base_tokens, 0)
        return Candidate(
            index=index, prompt=extended, added=extension.added(), seed=seed, tokens=tokens
        )

    # Token steps and one shot: one model call per draw, cut to the budget.

    def _by_tokens(
        self, prepared: Prepared, seeds: list[int], have: set[str]
    ) -> Plan[list[Extension | Exception]]:
        p = self.presampler
        limit = self.options.token_limit()
        # Some room past the limit, so the last whole tag or word can finish.
        sampling = self.options.sampling(p.sampling).with_(
            max_new_tokens=limit + max(4, limit // 2)
        )
        bans = BanMatcher(prepared.ban_rules(), p.db.category_of)
        constraint = BanConstraint(bans, prepared.protected()) if bans else None
        if p.source.layout == "dtg":
            opening = dtg_opening(prepared, limit, quality=p.source.quality)
        else:
            opening = tipo_opening(prepared, limit)
        jobs = [GenerationJob(opening.text, sampling, seed, constraint) for seed in seeds]
        generations = yield [_single(job) for job in jobs]
        out: list[Extension | Exception] = []
        for generation in generations:
            if isinstance(generation, Exception):
                out.append(generation)
                continue
            assert isinstance(generation, Generation)
            finished = generation.finish == "eos"
            if opening.field == "tags":
                found = continued_tags(generation.text, finished=finished)
                tags = self._new_tags(found, have, bans)
                out.append(self._fit(prepared, tags=tags))
            else:
                words = continued_words(generation.text, finished=finished)
                out.append(self._fit(prepared, words=_unbanned_words(words, bans)))
        return out

    def _new_tags(self, tags: list[str], have: set[str], bans: BanMatcher) -> list[str]:
        names = [
            info.name if info is not None else t
            for t, info in zip(tags, self.presampler.db.lookup_many(tags), strict=True)
        ]
        new: list[str] = []
        seen = set(have)
        for name in names:
            key = same_key(normalize_key(name))
            if not key or key in seen or len(name) > MAX_TAG_CHARS or not safe_tag(name):
                continue
            if bans.tag_banned(name):
                continue
            seen.add(key)
            new.append(name)
        return new

    def _fit(
        self,
        prepared: Prepared,
        *,
        tags: list[str] = (),
        words: list[str] = (),  # type: ignore[assignment]
    ) -> Extension:
        """Whole tags or words, in the model's order, up to the token limit.

        A step keeps at least one (a tag longer than the step still counts as
        "about n tokens"); one shot never goes over its limit.
        """
        count = self.presampler.backend.count_tokens
        prompt = prepared.request.prompt
        where = anchors(prompt, prepared.parsed)
        assert where is not None
        target = self.options.target
        base = count(prompt)
        limit = self.options.token_limit()
        strict = self.options.strategy == "oneshot"
        items = list(tags) if tags else list(words)
        kept = 0
        for n in range(1, len(items) + 1):
            if tags:
                trial = insert(prompt, where, tags=[escape(t, target) for t in items[:n]])
            else:
                trial = insert(prompt, where, text=escape("".join(items[:n]), target))
            if count(trial) - base > limit and (strict or kept > 0):
                break
            kept = n
        if tags:
            return Extension(tags=tuple(items[:kept]))
        return Extension(text="".join(items[:kept]))

    # Length steps: the regular pipeline with the next length target.

    def _by_length(
        self, prompt: str, seeds: list[int], have: set[str]
    ) -> Plan[list[Extension | Exception]]:
        p = self.presampler
        probe = self._prepare(prompt)
        tag_length = next_tag_length(tag_count(probe), TAG_MIN)
        nl_length = next_tag_length(sentence_count(probe.nl), NL_MIN) if probe.nl else None
        if tag_length is None and nl_length is None:
            raise RefineError(
                "the prompt is already past the longest length target; use token steps"
            )
        prepared = self._prepare(
            prompt,
            tag_length=tag_length or Length.VERY_LONG,
            nl_length=nl_length or Length.VERY_LONG,
            generate_nl=False,
            expand_nl=nl_length is not None,
            tag_first=False,
            shuffle_new_tags=False,
        )
        sampling = self.options.sampling(p.sampling)
        runs: list[Run] = [p.run_prepared(prepared, seed=seed, sampling=sampling) for seed in seeds]
        out: list[Extension | Exception] = []
        for result in (yield runs):
            if isinstance(result, Exception):
                out.append(result)
                continue
            assert isinstance(result, PresampleResult)
            tags = [
                t
                for c in Category
                for t in result.tags.get(c)
                if same_key(normalize_key(t)) not in have and safe_tag(t)
            ]
            out.append(Extension(text=text_added(probe.nl, result.extended), tags=tuple(tags)))
        return out


def _single(job: GenerationJob) -> Generator[GenerationJob, Generation, Generation]:
    """A run of one model call, for the scheduler."""
    generation = yield job
    return generation


def _unbanned_words(words: list[str], bans: BanMatcher) -> list[str]:
    """The words up to the first one that makes the text mention something banned."""
    for n in range(1, len(words) + 1):
        if bans.text_banned("".join(words[:n])):
            return words[: n - 1]
    return words
