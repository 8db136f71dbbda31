"""The package's stages depend on each other one way only (README, "Architecture").

Every intra-package import, at module level or inside a function, goes from a stage to an earlier one. A new
import that points back up the pipeline fails here, with the edge named.
"""

import ast
from pathlib import Path

import qcy_match

ROOT = Path(qcy_match.__file__).parent
# Earlier stages first; a package may import only packages of a lower rank.
RANK = {
    "_version": 0, "errors": 0, "config": 0, "progress": 0, "threads": 0,
    "text": 1, "taxonomy": 1, "persistence": 1, "evaluate": 1,
    "ingest": 2, "encoders": 2, "index": 2,
    "output": 3, "solvers": 3,
    "match": 4,
    "spark": 4.5, "milvus": 4.5,  # Spark batch jobs and the Milvus export: over match, below classify
    "classify": 5,
    "analytics": 6,
    "serve": 6.5,  # the portal service: after analytics, before cli
    "cli": 7,
    "": 8,  # qcy_match/__init__.py: the public API, names only
}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _edges() -> set[tuple[str, str, str]]:
    """(importing stage, imported stage, file) for every relative import between two stages."""
    out = set()
    for f in ROOT.rglob("*.py"):
        rel = f.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        package = parts[:-1]  # the package a relative import starts from (for __init__.py: its own)
        module = ".".join(parts[:-1] if f.name == "__init__.py" else parts)
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = package[: len(package) - node.level + 1]
            targets = [".".join([*base, node.module])] if node.module else \
                [".".join([*base, a.name]) for a in node.names]
            for target in targets:
                a, b = _stage(module), _stage(target)
                if a != b:
                    out.add((a, b, str(f.relative_to(ROOT.parent))))
    return out


def test_every_stage_is_ranked():
    stages = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
              if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()}
    assert stages <= set(RANK), f"rank the new stage(s) {sorted(stages - set(RANK))} in RANK and the README"


def test_imports_point_to_earlier_stages_only():
    edges = _edges()
    assert edges, "no imports between stages found: the scan is broken"
    backwards = sorted(f"{f}: {a or 'qcy_match'} imports {b}" for a, b, f in edges if RANK[b] >= RANK[a])
    assert not backwards, "\n".join(backwards)
