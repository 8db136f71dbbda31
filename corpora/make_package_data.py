"""Build the compact taxonomy and domain dictionary shipped in ``qcy_match/data``.

Run from the repository root: ``python corpora/make_package_data.py [--shared ../shared/data]``.
The outputs are committed, so users never need ``../shared``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parent.parent / "qcy_match" / "data"
SPLIT = re.compile(r"[、，,；;：:（）()\s/]+|和|及|与|或")
# Generic words that would turn every record into a match for every other.
# High enough that a domain term beats the split jieba's general dictionary prefers (钛 + 合金材料).
FREQ = 3000
GENERIC = {"制造", "其他", "服务", "活动", "行业", "产品", "生产", "加工", "设备", "专用", "用品", "相关", "未列明"}


def _terms(name: str) -> list[str]:
    parts = [p.strip() for p in SPLIT.split(name) if p and p.strip()]
    out = []
    for p in parts:
        p = re.sub(r"^(包括|指|其他|未列明|种用)", "", p).rstrip("。.")
        # Long compounds would swallow shorter queries whole; phrases with 的/等 are prose, not terms.
        if (2 <= len(p) <= 7 and p not in GENERIC and not re.search(r"[的等者。]", p)
                and not re.fullmatch(r"[\dA-Za-z.]+", p)):
            out.append(p)
    return out


def _includes(description: str) -> list[str]:
    """Product names from the standard's '◇ 包括' lists (not the '◆ 不包括' ones)."""
    terms: list[str] = []
    keep = True
    for line in description.splitlines():
        if line.startswith("◆"):
            keep = False
        elif line.startswith("◇"):
            keep = True
        if not keep:
            continue
        body = line.lstrip("—-◇ ").split("：", 1)[-1]
        terms.extend(_terms(body))
    return list(dict.fromkeys(terms))


def build(shared: Path) -> None:
    tree = json.loads((shared / "taxonomy" / "gbt4754_2017.json").read_text(encoding="utf-8"))
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any], parent: str | None, section: str | None) -> None:
        for child in node.get("children", []):
            level = int(child["level"])
            sec = child["code"] if level == 1 else section
            code = child["code"] if level == 1 else f"{sec}{child['code']}"
            tags = sorted(child.get("tags") or [])
            detail = child.get("tagDetail") or {}
            paths = [c.get("path", "") for c in (detail.get("strategic") or {}).get("categories", [])]
            strategic = sorted({p.split(">")[0].strip() for p in paths if p})
            nodes.append({"code": code, "name": child["name"], "level": level, "parent": parent,
                          "tags": tags, "strategic": strategic,
                          "includes": _includes(child.get("description") or "")[:40]})
            walk(child, code, sec)

    walk(tree, None, None)
    (OUT / "gbt4754.json").write_text(
        json.dumps({"standard": "GB/T 4754-2017", "nodes": nodes}, ensure_ascii=False, separators=(",", ":")),
        encoding="utf-8")

    chains = yaml.safe_load((shared / "taxonomy" / "shaanxi_chains.yaml").read_text(encoding="utf-8"))["chains"]
    (OUT / "shaanxi_chains.json").write_text(json.dumps(chains, ensure_ascii=False, indent=1), encoding="utf-8")

    words: dict[str, None] = {}
    for n in nodes:
        for t in _terms(n["name"]) + n["includes"]:
            words.setdefault(t)
    for c in chains:
        for t in _terms(c["name"]):
            words.setdefault(t)
    lines = [f"{w} {FREQ} n" for w in words if len(w) >= 2]
    (OUT / "domain_dict.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(nodes)} nodes, {len(chains)} chains, {len(lines)} dictionary words")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "data")
    build(ap.parse_args().shared)
