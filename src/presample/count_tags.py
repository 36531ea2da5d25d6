"""The people-count tag a tag line implies, put in place before the model reads it.

TIPO's tag line holds the people-count tags (``1girl``, ``2boys`` ...) first and
every model of the layout was trained with them in place: a line is continued
after its last tag, so a count tag that was not given is never written (the
shipped model added ``1girl`` to none of 150 held-out posts given 30% of their
tags, where it was held out in 58). Yet a person's features without a count tag
are how people type (``long hair, smile, beach``), and anime image models lean on
the count tag more than on any other. So when the line describes a person and
counts nobody, the count tag its tags most often come with in the training
records (``tag_prior.CooccurrenceTable``) joins the line as an added tag, and the
model reads the line the way it was trained to.

Only count tags the records back: of held-out posts whose given tags describe a
person, the top count tag at a likelihood of 0.3 or more was one of the post's
own 57% of the time (a model's new tag is one 14-17% of the time); another
count tag beside one already there needs 0.5, since it changes who is in the
picture (``benchmarks/results/count-tags-2026-12-06.txt``).
"""

from __future__ import annotations

from collections.abc import Sequence

from .categories import SPECIAL_TAGS
from .contradictions import contradicts, describes_person, has_person, people
from .tag_prior import CooccurrenceTable
from .tagdb import normalize_key

MIN_LIKELIHOOD = 0.3
MIN_MORE = 0.5
"""A line that counts somebody already gets another count tag only on this much
evidence (``1girl, sex, penis`` -> ``1boy``: right 21 times in 23 at 0.5 or more,
on held-out posts given 30% of their tags)."""
COUNT_TAGS = tuple(t for t in SPECIAL_TAGS if people([t]))
"""The special tags that count people (``male focus`` says who, not how many)."""


def implied_count_tags(
    line: Sequence[str],
    table: CooccurrenceTable,
    level: int,
    *,
    characters: Sequence[str] = (),
    copyrights: Sequence[str] = (),
) -> list[str]:
    """The count tags to add to tag line ``line`` at rating ``level``, most likely
    first: when the line describes a person (or ``characters`` are named) and counts
    nobody, the count tag the records put with its tags and names at least
    ``MIN_LIKELIHOOD`` of the time; and any further one they put there at least
    ``MIN_MORE`` of the time. None contradicts the line or another (``1girl`` and
    ``2girls``), and a line with nobody in it (``scenery, sky``) gets none."""
    keys = [k for t in line if (k := normalize_key(t))]
    counted = bool(people(keys))
    if not (characters or has_person(keys) or any(map(describes_person, keys))):
        return []  # a count tag is a person
    scores = table.likelihoods(keys, level, COUNT_TAGS, names=[*characters, *copyrights])
    added: list[str] = []
    for tag in sorted(scores, key=lambda t: (-scores[t], t)):
        if scores[tag] < (MIN_MORE if counted or added else MIN_LIKELIHOOD):
            break
        if tag not in keys and not contradicts(tag, [*keys, *added]):
            added.append(tag)
    return added
