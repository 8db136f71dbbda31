"""PNG plots of the demand analytics with Chinese labels (matplotlib), and the CJK font they use.

The font is Noto Sans CJK SC from the ``mplfonts`` wheel (installed by the ``[report]`` extra, so no system
package is needed); a system font with CJK glyphs (e.g. Debian's fonts-noto-cjk) is used when that wheel is
absent. Figures are drawn without pyplot and with their style set only while drawing, so making a plot leaves
matplotlib's backend and ``rcParams`` as the caller had them (a notebook's inline plots keep working).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import logging
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MissingExtraError

logger = logging.getLogger(__name__)

_WHEEL_FONT = "NotoSansCJKsc-Regular.otf"
_SYSTEM_NAMES = ("Noto Sans CJK SC", "Noto Sans CJK", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
                 "Droid Sans Fallback", "AR PL UMing CN")


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingExtraError("plots need matplotlib: pip install 'qcy-match[report]'") from exc
    return matplotlib


@lru_cache(maxsize=1)
def cjk_font_path() -> Path:
    """A font file with CJK glyphs: the mplfonts wheel's Noto Sans CJK SC, else an installed system font."""
    spec = importlib.util.find_spec("mplfonts")
    if spec and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "fonts" / _WHEEL_FONT
        if path.is_file():
            return path
    from matplotlib import font_manager

    for entry in font_manager.fontManager.ttflist:
        if any(entry.name.startswith(n) for n in _SYSTEM_NAMES):
            return Path(entry.fname)
    raise MissingExtraError("no font with Chinese glyphs found: pip install 'qcy-match[report]' (ships Noto Sans "
                            "CJK SC via mplfonts) or install a system CJK font (apt-get install fonts-noto-cjk)")


@lru_cache(maxsize=1)
def cjk_font_name() -> str:
    """Register the CJK font with matplotlib and return its family name."""
    _matplotlib()
    from matplotlib import font_manager

    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    name: str = font_manager.FontProperties(fname=str(path)).get_name()
    logger.info("CJK font for plots: %s (%s)", name, path)
    return name


def _styled(draw: Callable[..., bytes]) -> Callable[..., bytes]:
    """Run a plot function with the CJK font and ASCII minus signs, restoring ``rcParams`` afterwards.

    The whole drawing runs inside the context, saving included: tick labels take their font when they are drawn.
    """
    @functools.wraps(draw)
    def run(*args: Any, **kwargs: Any) -> bytes:
        matplotlib = _matplotlib()
        with matplotlib.rc_context({"font.family": [cjk_font_name(), "DejaVu Sans"], "axes.unicode_minus": False}):
            return draw(*args, **kwargs)
    return run


def _figure(height: float, width: float = 8.0) -> tuple[Any, Any]:
    """A figure outside pyplot (no backend, no global figure list) and its one axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    return fig, fig.subplots()


def to_png(fig: Any) -> bytes:
    """The figure as PNG bytes; a pyplot figure is closed."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    if getattr(fig.canvas, "manager", None) is not None:  # made by pyplot, which keeps it until closed
        import matplotlib.pyplot as plt

        plt.close(fig)
    return buf.getvalue()


@_styled
def gap_chart(gap: pd.DataFrame, by: str, title: str) -> bytes:
    """Needs and achievements per group (bars) with the share of weakly matched needs (dots, top axis)."""
    df = gap.sort_values("needs", ascending=True)
    fig, ax = _figure(max(2.5, 0.32 * len(df) + 1.2))
    y = np.arange(len(df))
    ax.barh(y - 0.2, df["needs"], height=0.4, label="需求数 needs", color="#d62728")
    ax.barh(y + 0.2, df["achievements"], height=0.4, label="成果数 achievements", color="#1f77b4")
    ax.set_yticks(y, df[by].astype(str))
    ax.set_xlabel("数量 count")
    ax2 = ax.twiny()
    ax2.plot(df["weak_share"].fillna(0), y, "o", color="#ff7f0e", label="弱匹配需求占比 weak share")
    ax2.set_xlim(0, 1)
    ax2.set_xlabel("弱匹配需求占比 share of needs without a good match")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [str(h.get_label()) for h in handles], loc="lower right", fontsize=8)
    ax.set_title(title)
    return to_png(fig)


@_styled
def strength_histogram(best_strength: pd.Series, threshold: float) -> bytes:
    """Distribution of the confidence of each need's top match, with the weak-match threshold."""
    fig, ax = _figure(3.2)
    ax.hist(best_strength, bins=30, color="#1f77b4")
    ax.axvline(threshold, color="#d62728", linestyle="--", label=f"阈值 threshold {threshold:.3f}")
    ax.set_xlabel("最佳匹配置信度 confidence of the top match")
    ax.set_ylabel("需求数 needs")
    ax.set_title("需求最佳匹配置信度分布")
    ax.legend()
    return to_png(fig)


@_styled
def topic_chart(topics: pd.DataFrame, title: str, top: int = 15) -> bytes:
    """Sizes of the largest topics, labelled by their keywords."""
    df = topics.nlargest(top, "size").iloc[::-1]
    fig, ax = _figure(max(2.5, 0.3 * len(df) + 1.2))
    ax.barh(np.arange(len(df)), df["size"], color="#2ca02c")
    ax.set_yticks(np.arange(len(df)), df["label"].astype(str))
    ax.set_xlabel("记录数 records")
    ax.set_title(title)
    return to_png(fig)


@_styled
def unused_chart(unused_by: pd.DataFrame, by: str) -> bytes:
    """Achievements in nobody's top-k, per group (stacked on the group's total)."""
    df = unused_by.sort_values("achievements", ascending=True)
    fig, ax = _figure(max(2.5, 0.3 * len(df) + 1.2))
    y = np.arange(len(df))
    ax.barh(y, df["achievements"], color="#c7c7c7", label="成果总数 all achievements")
    ax.barh(y, df["unused"], color="#9467bd", label="未进入任何需求前k的成果 unused")
    ax.set_yticks(y, df[by].astype(str))
    ax.set_xlabel("成果数 achievements")
    ax.set_title("闲置供给（按行业）")
    ax.legend(fontsize=8)
    return to_png(fig)
