"""The CLI answers --help without loading the heavy stack, and the package imports without POSIX-only modules."""

import subprocess
import sys

HEAVY = ("pandas", "scipy", "faiss", "sklearn", "torch", "jieba")


def _imported(args: list[str]) -> set[str]:
    """Top-level modules a fresh interpreter imports while running ``args`` (from -X importtime)."""
    res = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    names = set()
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_help_imports_no_heavy_module():
    names = _imported(["-m", "qcy_match.cli", "--help"])
    assert "qcy_match" in names  # the check reads real import events
    assert not names & set(HEAVY), sorted(names & set(HEAVY))


def test_subcommand_help_imports_no_heavy_module():
    names = _imported(["-m", "qcy_match.cli", "match", "--help"])
    assert not names & set(HEAVY), sorted(names & set(HEAVY))


def test_public_names_load_on_first_use():
    code = ("import sys, qcy_match; assert 'pandas' not in sys.modules; "
            "qcy_match.MatchEngine; assert 'pandas' in sys.modules; "
            "assert set(qcy_match.__all__) <= set(dir(qcy_match))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
