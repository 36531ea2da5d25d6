"""Sampling settings: one plain object every backend honours the same way."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

MIN_TEMPERATURE = 0.01
MIN_TOP_P = 0.001


@dataclass(frozen=True, slots=True)
class Sampling:
    """How the next token is drawn.

    Applied in this order on every backend we control: repetition penalty,
    temperature, top-k, top-p, min-p (the Hugging Face order). ``temperature``
    0 means greedy. 0 disables ``top_k``; 1.0 disables ``top_p``; 0.0 disables
    ``min_p``; 1.0 disables ``repetition_penalty``.
    """

    temperature: float = 0.35
    top_p: float = 0.95
    top_k: int = 60
    min_p: float = 0.1
    repetition_penalty: float = 1.17
    max_new_tokens: int = 512

    def __post_init__(self) -> None:
        checks = [
            # Near-zero temperatures and top_p overflow the sampler (inf logits,
            # empty distributions); nobody means 1e-300, so they are refused here
            # for every front end rather than failing mid-batch.
            (
                self.temperature == 0 or MIN_TEMPERATURE <= self.temperature <= 10,
                f"temperature must be 0 (greedy) or between {MIN_TEMPERATURE} and 10",
            ),
            (MIN_TOP_P <= self.top_p <= 1, f"top_p must be between {MIN_TOP_P} and 1"),
            (0 <= self.top_k <= 100_000, "top_k must be between 0 and 100000"),
            (0 <= self.min_p < 1, "min_p must be in [0, 1)"),
            (0.5 <= self.repetition_penalty <= 3, "repetition_penalty must be between 0.5 and 3"),
            (1 <= self.max_new_tokens <= 4096, "max_new_tokens must be between 1 and 4096"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def with_(self, **changes: object) -> Sampling:
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


# The reference library's defaults (tipo-kgen), which the published models were tuned with.
TIPO_DEFAULT = Sampling()
# DanTagGen's usual settings in the reference extension.
DTG_DEFAULT = Sampling(
    temperature=0.7, top_p=0.95, top_k=100, min_p=0.0, repetition_penalty=1.0, max_new_tokens=256
)
