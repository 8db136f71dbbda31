"""``numpy``: no search structure; every query is an exact scan of the stored vectors.

The ground truth the other kinds are tested against, and the fallback they use for strict filters.
"""

from __future__ import annotations

from .backend import Backend


class ExactBackend(Backend):
    """Exact inner-product search by scanning (numpy over float32, FAISS over float16 codes in place)."""

    name = "numpy"
