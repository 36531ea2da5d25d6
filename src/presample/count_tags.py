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

Only the most likely count tag, and only when the records back it: of held-out
posts whose given tags describe a person, the top count tag at a likelihood of
0.3 or more was one of the post's own 57% of the time (a model's new tag is one
14% of the time), and a second one would change who is in the picture on
weaker evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

from .categories import SPECIAL_TAGS
from .contradictions import contradicts, describes_person, has_person, people
from .tag_prior import CooccurrenceTable
from .tagdb import normalize_key

MIN_LIKELIHOOD = 0.3
COUNT_TAGS = tuple(t for t in SPECIAL_TAGS if people([t]))
"""The special tags that count people (``male focus`` says who, not how many)."""


def implied_count_tag(line: Sequence[str], table: CooccurrenceTable, level: int) -> str | None:
    """The count tag to add to tag line ``line`` at rating ``level``, or ``None``:
    when the line counts nobody, describes a person, and the records put a count
    tag with its tags at least ``MIN_LIKELIHOOD`` of the time."""
    keys = [k for t in line if (k := normalize_key(t))]
    if people(keys) or not any(describes_person(k) or has_person([k]) for k in keys):
        return None
    scores = table.likelihoods(keys, level, COUNT_TAGS)
    if not scores:
        return None
    best = max(sorted(scores), key=scores.__getitem__)
    if scores[best] < MIN_LIKELIHOOD or contradicts(best, keys):
        return None  # "no humans, long hair" is the user's to sort out
    return best
