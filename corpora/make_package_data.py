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
GENERIC = {"制造", "其他", "服务", "活动", "行业", "产品", "生产", "加工", "设备", "专用", "用品", "相关", "未列明",
           "模块", "系统", "系列", "零件", "部件", "配件", "材料", "其附件", "附件", "装置", "器具", "用具", "制品",
           "原料"}
# The standard's tree says 航空、航天器及设备制造 (374) as one 中类; the 航空 chain is the aviation 小类 only.
CHAIN_FIXES = {"aviation": ["3741", "3744", "3749"]}
N_INCLUDES, N_EXCLUDES = 80, 30


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


def _notes(description: str) -> tuple[list[str], list[str]]:
    """Product names from the standard's '◇ 包括' lists and from its '◆ 不包括' lists."""
    inc: list[str] = []
    exc: list[str] = []
    keep = True
    for line in description.splitlines():
        if line.startswith("◆"):
            keep = False
        elif line.startswith("◇"):
            keep = True
        head, _, body = line.lstrip("—-◇◆ ").partition("：")
        # A '— 钛材：钛棒材、…' line names its group before the colon; the group is a product term too.
        words = _terms(body) + _terms(head) if body else _terms(head)
        (inc if keep else exc).extend(words)
    return list(dict.fromkeys(inc)), list(dict.fromkeys(exc))


def _strategic(detail: dict[str, Any]) -> list[str]:
    """Top level of the 战略性新兴产业 paths: the node's main category and each of its listed categories."""
    info = detail.get("strategic") or {}
    paths = [info.get("category", "")] + [c.get("path", "") for c in info.get("categories") or []]
    return sorted({p.split(">")[0].strip() for p in paths if p and p.strip()})


def build(shared: Path) -> None:
    tree = json.loads((shared / "taxonomy" / "gbt4754_2017.json").read_text(encoding="utf-8"))
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any], parent: str | None, section: str | None) -> None:
        for child in node.get("children", []):
            level = int(child["level"])
            sec = child["code"] if level == 1 else section
            code = child["code"] if level == 1 else f"{sec}{child['code']}"
            tags = sorted(child.get("tags") or [])
            inc, exc = _notes(child.get("description") or "")
            nodes.append({"code": code, "name": child["name"], "level": level, "parent": parent,
                          "tags": tags, "strategic": _strategic(child.get("tagDetail") or {}),
                          "includes": inc[:N_INCLUDES], "excludes": exc[:N_EXCLUDES]})
            walk(child, code, sec)

    walk(tree, None, None)
    (OUT / "gbt4754.json").write_text(
        json.dumps({"standard": "GB/T 4754-2017", "nodes": nodes}, ensure_ascii=False, separators=(",", ":")),
        encoding="utf-8")

    raw = yaml.safe_load((shared / "taxonomy" / "shaanxi_chains.yaml").read_text(encoding="utf-8"))["chains"]
    by_digits = {n["code"][1:]: n["code"] for n in nodes if n["level"] > 1}
    chains = []
    for c in raw:
        digits = CHAIN_FIXES.get(c["id"], [str(x) for x in c["gbt4754"]])
        missing = [d for d in digits if d not in by_digits]
        if missing:
            raise SystemExit(f"chain {c['id']}: codes {missing} are not in GB/T 4754-2017")
        chains.append({"id": c["id"], "name": c["name"], "codes": [by_digits[d] for d in digits],
                       "source_codes": [str(x) for x in c["gbt4754"]]})
    # JSON rather than YAML in the package, so the core needs no YAML parser; the YAML in ../shared is the source.
    (OUT / "shaanxi_chains.json").write_text(
        json.dumps({"source": "shaanxi_chains.yaml", "chains": chains}, ensure_ascii=False, indent=1),
        encoding="utf-8")

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
