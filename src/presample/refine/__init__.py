"""The refine loop (seed 004, UF-FGTG's interaction) on any model presample runs.

    from presample import Presampler, RefineSession, RefineOptions
    with Presampler() as p:
        session = RefineSession(p, "a cat", RefineOptions(seed=7))
        for c in session.propose():          # 3 candidates, each about 6 tokens longer
            print(c.index, c.prompt, c.added)
        session.pick(1)                      # becomes the current prompt
        session.undo()                       # back one pick
        saved = session.state()              # JSON; RefineSession.from_state(p, saved)

See docs/refine.md.
"""

from __future__ import annotations

from .models import Candidate, RefineError, RefineOptions, RefineState
from .session import RefineSession, derive_seed

__all__ = [
    "Candidate",
    "RefineError",
    "RefineOptions",
    "RefineSession",
    "RefineState",
    "derive_seed",
]
