"""A non-neural baseline: retrieval and co-occurrence over the training prompts.

Like the "Prompt DB" baseline of the TIPO paper, it only ever repeats what the
training records contain:

- **tags**: the training records that share the most input tags (and whose
  rating the request allows; shared tags weighted by their inverse document
  frequency, so a rare shared tag counts more than ``1girl``) vote for their
  other tags, each vote weighted by that score; the continuation is drawn from those
  votes without replacement until a tag count drawn from the requested
  length's ``TAG_MIN..TAG_MAX`` (seeded by the request's seed and input, as the
  model's length floor is) is reached; when the neighbours run dry, tags
  are drawn by their overall frequency among allowed records.
- **captions**: the training long captions of short/long caption pairs whose
  words overlap the input text the most (IDF-weighted, divided by the square
  root of the caption's word count); one of the best is drawn in proportion to
  its score, preferring captions whose sentence count fits the requested length.

It answers :class:`~presample.request.PresampleRequest` with a
:class:`~presample.request.PresampleResult`, the same as a ``Presampler``, and
a request's seed reproduces its answer.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence

from ..lengths import sentence_count
from ..rating import infer_rating, rating_level
from ..request import PresampleRequest, PresampleResult, TagSet
from ..tipo import NL_MAX, NL_MIN, TAG_MAX, TAG_MIN, Length
from ..training.records import Record
from .metrics import tag_key, words

TAG_LINE = ("special", "general")
"""The categories the length targets count (the TIPO tag line)."""
NEIGHBOURS = 64
"""Training records that vote for the continuation."""
CAPTION_CANDIDATES = 16
BACKOFF_TAGS = 5000
"""The most frequent tags per rating level kept for the frequency back-off."""
STOP_WORDS = frozenset(
    {
        "a", "an", "the", "of", "in", "on", "at", "to", "and", "or", "with", "for", "from", "by",
        "is", "are", "was", "were", "be", "this", "that", "it", "its", "their", "there", "some",
        "his", "her", "as", "into", "near", "next",
    }
)  # fmt: skip


def request_key(request: PresampleRequest) -> tuple:
    """What a tag request is, for matching a baseline's runs to a model's."""
    return (request.seed, tuple(request.tags.all_tags()), request.tag_length, request.nl_prompt)


def _idf(document_frequency: dict[str, int], documents: int) -> dict[str, float]:
    """``log(1 + N / df)``: always positive, larger for rarer keys."""
    return {k: math.log1p(documents / df) for k, df in document_frequency.items()}


def _weighted_sample(weights: dict[str, float], k: int, rng: random.Random) -> list[str]:
    """``k`` distinct keys drawn without replacement in proportion to their weights
    (Efraimidis-Spirakis keys), in draw order."""
    if k <= 0 or not weights:
        return []
    # Sorted keys: the draw must not depend on dict insertion order.
    keyed = [
        (math.log(rng.random() or 1e-300) / w, tag) for tag, w in sorted(weights.items()) if w > 0
    ]
    return [tag for _, tag in heapq.nlargest(k, keyed)]


class PromptDB:
    """The training records, indexed for the baseline sampler."""

    name = "baseline"
    frequent_only = False
    """Add the most frequent training tags instead of those of similar prompts."""

    def __init__(self, records: Iterable[Record]) -> None:
        self.counts: dict[tuple, int] = {}
        """New tags to add per request (``matched``); empty: drawn from the length."""
        self.tag_lists: list[tuple[str, ...]] = []
        self.levels: list[int] = []
        self.by_tag: dict[str, list[int]] = defaultdict(list)
        self.captions: list[str] = []
        self.caption_sentences: list[int] = []
        self.by_word: dict[str, list[int]] = defaultdict(list)
        self.caption_norms: list[float] = []
        frequency: list[Counter] = [Counter(), Counter(), Counter()]
        self._spelling: dict[str, tuple[str, str]] = {}
        """Tag key -> (category, spelling) as first seen in training."""
        for record in records:
            tags = tuple(dict.fromkeys(t for c in TAG_LINE for t in record.tags.get(c, [])))
            for category in TAG_LINE:
                for tag in record.tags.get(category, []):
                    self._spelling.setdefault(tag_key(tag), (category, tag))
            if tags:
                index = len(self.tag_lists)
                level = rating_level((record.tags.get("rating") or ["general"])[0])
                self.tag_lists.append(tuple(tag_key(t) for t in tags))
                self.levels.append(level)
                for tag in tags:
                    key = tag_key(tag)
                    self.by_tag[key].append(index)
                    for allowed in range(level, 3):
                        frequency[allowed][key] += 1
            if record.long and record.short:
                index = len(self.captions)
                self.captions.append(record.long)
                self.caption_sentences.append(sentence_count(record.long))
                bag = words(record.long) - STOP_WORDS
                self.caption_norms.append(math.sqrt(len(bag) or 1))
                for word in bag:
                    self.by_word[word].append(index)
        self.frequent = [dict(c.most_common(BACKOFF_TAGS)) for c in frequency]
        self.tag_idf = _idf({k: len(v) for k, v in self.by_tag.items()}, len(self.tag_lists))
        self.word_idf = _idf({k: len(v) for k, v in self.by_word.items()}, len(self.captions))

    def frequent_tags(self) -> PromptDB:
        """The trivial baseline on the same index: new tags are the training records'
        most frequent tags (allowed by the rating) that the input lacks, most frequent
        first, as many as the Prompt-DB baseline adds (or, :meth:`matched`, as many as
        a model added to the same request). A model should beat it."""
        other = copy.copy(self)
        other.name = "frequent tags"
        other.frequent_only = True
        return other

    def matched(self, counts: dict[tuple, int]) -> PromptDB:
        """This baseline adding exactly as many new tag-line tags to a request as
        ``counts[request_key(request)]`` says (a model's own count for that request),
        so that recall compares the choice of tags, not their number; requests not
        in ``counts`` draw their count as usual."""
        other = copy.copy(self)
        other.counts = counts
        return other

    def danbooru_tags(self, popular: Sequence[str]) -> PromptDB:
        """The trivial baseline on Danbooru's own counts: new tags are the most popular
        Danbooru general tags (``popular``, most first; ``TagDatabase.most_popular``)
        whose names the rating allows (``presample.rating.infer_rating``) and the input
        lacks, as many as the Prompt-DB baseline adds."""
        other = copy.copy(self)
        other.name = "Danbooru frequent tags"
        other.frequent_only = True
        allowed = [("general",), ("general", "sensitive"), ("general", "sensitive", "explicit")]
        # Most popular first, as the frequency lists are (the values only rank).
        other.frequent = [
            {tag_key(t): len(popular) - i for i, t in enumerate(popular) if infer_rating([t]) in ok}
            for ok in allowed
        ]
        other._spelling = {**self._spelling,
                           **{tag_key(t): ("general", t) for t in popular}}  # fmt: skip
        return other

    def known(self, tag: str) -> bool:
        """Whether a tag appears in some training record (the baseline emits no other)."""
        return tag_key(tag) in self.by_tag

    # ------------------------------------------------------------------ tags

    def continue_tags(
        self,
        given: Sequence[str],
        length: Length | str,
        rating: str | None,
        rng: random.Random,
        count: int | None = None,
    ) -> list[tuple[str, str]]:
        """New ``(category, tag)`` pairs for ``given``, so that given + new has a
        count in the length's range (``count``: exactly that many new ones)."""
        length = Length(length)
        have = {tag_key(t) for t in given}
        target = rng.randint(TAG_MIN[length], TAG_MAX[length])
        need = target - len(have) if count is None else count
        if need <= 0:
            return []
        level = rating_level(rating)
        if self.frequent_only:
            ranked = (k for k in self.frequent[level] if k not in have)  # most frequent first
            return [self._spelling[k] for k in itertools.islice(ranked, need)]
        overlap: defaultdict[int, float] = defaultdict(float)
        for key in have:
            for index in self.by_tag.get(key, ()):
                if self.levels[index] <= level:
                    overlap[index] += self.tag_idf[key]
        # The records sharing the most input tags; ties broken by position (stable).
        neighbours = heapq.nsmallest(NEIGHBOURS, overlap.items(), key=lambda kv: (-kv[1], kv[0]))
        votes: dict[str, float] = defaultdict(float)
        for index, shared in neighbours:
            for key in self.tag_lists[index]:
                if key not in have:
                    votes[key] += shared
        chosen = _weighted_sample(votes, need, rng)
        if len(chosen) < need:
            taken = have | set(chosen)
            backoff = {k: float(n) for k, n in self.frequent[level].items() if k not in taken}
            chosen += _weighted_sample(backoff, need - len(chosen), rng)
        return [self._spelling[k] for k in chosen]

    # ------------------------------------------------------------------ captions

    def write_caption(self, text: str, length: Length | str, rng: random.Random) -> str:
        """A training long caption close to ``text`` (empty if there are none)."""
        if not self.captions:
            return ""
        length = Length(length)
        overlap: defaultdict[int, float] = defaultdict(float)
        for word in words(text) - STOP_WORDS:
            for index in self.by_word.get(word, ()):
                overlap[index] += self.word_idf[word]
        for index in overlap:
            overlap[index] /= self.caption_norms[index]
        low, high = NL_MIN[length], NL_MAX[length]

        def fits(index: int) -> bool:
            count = self.caption_sentences[index]
            return count >= low and (high is None or count <= high)

        ranked = sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0]))
        candidates = [kv for kv in ranked if fits(kv[0])][:CAPTION_CANDIDATES]
        if not candidates:
            candidates = ranked[:CAPTION_CANDIDATES]
        if not candidates:
            fitting = [i for i in range(len(self.captions)) if fits(i)] or list(
                range(len(self.captions))
            )
            return self.captions[rng.choice(fitting)]
        weights = {str(index): score for index, score in candidates}
        (pick,) = _weighted_sample(weights, 1, rng)
        return self.captions[int(pick)]

    # ------------------------------------------------------------------ requests

    def presample(self, request: PresampleRequest) -> PresampleResult:
        """Answer a request as a ``Presampler`` would: tags, then a caption if asked."""
        tags = request.tags.as_dict()
        given = [t for c in TAG_LINE for t in tags[c]]
        # Seeded by the input too: by the seed alone every item of a seed drew the same
        # count, and three seeds' luck moved the baseline's mean length by 1.7 tags.
        rng = random.Random(f"presample-baseline:{request.seed}:{given}:{request.nl_prompt}")
        rating = (tags["rating"] or [None])[0]
        count = self.counts.get(request_key(request))
        if request.expand_tags and (given or not request.nl_prompt):
            new = self.continue_tags(given, request.tag_length, rating, rng, count)
            for category, tag in new:
                tags[category].append(tag)
        generated = ""
        text = request.nl_prompt or ", ".join(given)
        if request.generate_nl and text:
            generated = self.write_caption(text, request.nl_length, rng)
        result_tags = TagSet(**tags)
        prompt = ", ".join(result_tags.all_tags())
        if generated:
            prompt = f"{prompt}, {generated}" if prompt else generated
        return PresampleResult(
            tags=result_tags,
            extended=request.nl_prompt,
            generated=generated,
            prompt=prompt,
            seed=request.seed,
            model=self.name,
        )

    def presample_many(
        self,
        requests: Sequence[PresampleRequest],
        *,
        on_result: Callable[[int, PresampleResult | Exception], None] | None = None,
    ) -> list[PresampleResult | Exception]:
        results: list[PresampleResult | Exception] = []
        for index, request in enumerate(requests):
            result = self.presample(request)
            results.append(result)
            if on_result is not None:
                on_result(index, result)
        return results
