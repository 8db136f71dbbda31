"""Tokenising speed and agreement of the two segmenters (jieba-rs through rjieba, pure-Python jieba) on CSL.

Each backend tokenises the 2,000 CSL records (title + keywords + abstract) as the engine does: domain dictionary,
search mode for documents, protected ASCII codes, stopwords, through ``Tokenizer.tokenize_many``. Characters per CPU
second on one core (the process is pinned to one CPU where the OS allows, and timed by its own CPU time, so other
work on a shared machine counts less), best of ``--repeat`` passes after one warm-up pass, with and without
normalisation, plus the bare segmenter calls (whole text, nothing around them) for reference, and each measure as
a ratio to the bare search-mode cut. Agreement: the share of records whose token lists are identical, and every
differing token with its kind.

Usage: python -m benchmarks.tokenise_speed [--data DIR] [--out DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qcy_match.text import Tokenizer, normalize, rjieba_installed

from .datasets import REPO, default_data, load_csl


def pin_one_core() -> str:
    """Run this process on one CPU, so the figures are per core; returns what was done."""
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity here)"


def best_rate(fn: Callable[[], object], chars: int, repeat: int) -> float:
    """Characters per CPU second of ``fn`` over ``chars`` characters: a warm-up call, then the best of ``repeat``."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return chars / best


def kind(token: str) -> str:
    """Coarse kind of a token: Chinese, ASCII code, mixed Chinese and other, or other."""
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in token)
    if han == len(token):
        return "chinese"
    if token.isascii():
        return "ascii"
    return "mixed" if han else "other"


def agreement(a: Sequence[list[str]], b: Sequence[list[str]]) -> dict[str, Any]:
    """Records with identical token lists, and the tokens found in only one of the two (multiset difference)."""
    only_a: Counter[str] = Counter()
    only_b: Counter[str] = Counter()
    same = 0
    for x, y in zip(a, b, strict=True):
        if x == y:
            same += 1
            continue
        cx, cy = Counter(x), Counter(y)
        only_a.update(cx - cy)
        only_b.update(cy - cx)
    kinds: Counter[str] = Counter()
    for tok, n in (only_a + only_b).items():
        kinds[kind(tok)] += n
    return {"records": len(a), "identical_records": same, "identical_share": same / len(a),
            "tokens_a": sum(map(len, a)), "tokens_b": sum(map(len, b)),
            "only_jieba": dict(only_a.most_common()), "only_rjieba": dict(only_b.most_common()),
            "differing_tokens_by_kind": dict(kinds)}


def measure(texts: list[str], repeat: int) -> dict[str, Any]:
    """Speeds per backend and the agreement between them."""
    normed = [normalize(t) for t in texts]
    chars = sum(map(len, texts))
    backends = ["jieba", "rjieba"] if rjieba_installed() else ["jieba"]
    speed: dict[str, dict[str, float]] = {}
    tokens: dict[str, dict[str, list[list[str]]]] = {}
    for name in backends:
        tk = Tokenizer(backend=name)
        precise, search = tk._segmenter()
        speed[name] = {
            "search_mode_with_normalisation": best_rate(lambda tk=tk: tk.tokenize_many(texts), chars, repeat),
            "search_mode": best_rate(lambda tk=tk: tk.tokenize_many(normed, normalized=True), chars, repeat),
            "query_mode": best_rate(lambda tk=tk: tk.tokenize_many(normed, normalized=True, search_mode=False),
                                    chars, repeat),
            "bare_segmenter_search_mode": best_rate(lambda s=search: [s(t) for t in normed], chars, repeat),
            "bare_segmenter_precise": best_rate(lambda s=precise: [s(t) for t in normed], chars, repeat),
        }
        tokens[name] = {"search": [tk.tokenize(t, normalized=True) for t in normed],
                        "query": [tk.tokenize(t, normalized=True, search_mode=False) for t in normed]}
    out: dict[str, Any] = {"records": len(texts), "characters": chars, "chars_per_s": speed,
                           "ratio_to_bare_search_cut": {b: {k: v / speed[b]["bare_segmenter_search_mode"]
                                                            for k, v in speed[b].items()} for b in speed}}
    if len(backends) == 2:
        out["ratio_rjieba_over_jieba"] = {k: speed["rjieba"][k] / speed["jieba"][k] for k in speed["jieba"]}
        out["agreement"] = {mode: agreement(tokens["jieba"][mode], tokens["rjieba"][mode]) for mode in tokens["jieba"]}
    return out


def table(res: dict[str, Any]) -> str:
    """The readable report."""
    speed = res["chars_per_s"]
    rows = [f"# Tokenising speed on CSL ({res['records']:,} records, {res['characters']:,} characters, "
            f"{res['cpu']}, load {res['load_before']:.1f} on {res['cores']} cores)", "",
            "Characters per CPU second, best of the timed passes; compare the ratios, which "
            "hold across machines better than the absolute figures.", "",
            "| measure | " + " | ".join(speed) + " | rjieba ÷ jieba |",
            "|---|" + "---:|" * (len(speed) + 1)]
    for k in next(iter(speed.values())):
        ratio = res.get("ratio_rjieba_over_jieba", {}).get(k)
        rows.append(f"| {k.replace('_', ' ')} (chars/s) | " + " | ".join(f"{v[k] / 1e6:.2f}M" for v in speed.values())
                    + (f" | {ratio:.1f}× |" if ratio else " | – |"))
    bare = res.get("ratio_to_bare_search_cut", {})
    if bare:
        rows += ["", "Each measure ÷ the bare search-mode cut of the same backend (the segmenter's own cost): "
                 + "; ".join(f"{b}: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f}×" for k, v in r.items()
                                                   if not k.startswith("bare"))
                             for b, r in bare.items())]
    for mode, ag in res.get("agreement", {}).items():
        rows += ["", f"## Agreement, {mode} mode", "",
                 f"{ag['identical_records']:,} of {ag['records']:,} records have identical token lists "
                 f"({ag['identical_share']:.2%}); tokens: jieba {ag['tokens_a']:,}, rjieba {ag['tokens_b']:,}.", "",
                 f"- only jieba: {ag['only_jieba']}", f"- only rjieba: {ag['only_rjieba']}",
                 f"- differing tokens by kind: {ag['differing_tokens_by_kind']}"]
    return "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cpu = pin_one_core()
    papers, _ = load_csl(args.data)
    texts = [f"{p['title']} {' '.join(p['keywords'])} {p['abstract']}" for p in papers]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    res = {**measure(texts, args.repeat), "cpu": cpu, "python": platform.python_version(), "load_before": load,
           "cores": os.cpu_count()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tokenise_speed.json").write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
    (args.out / "tokenise_speed.md").write_text(table(res), encoding="utf-8")
    print(table(res))


if __name__ == "__main__":
    main()
