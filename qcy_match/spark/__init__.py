"""Batch matching on Spark (the ``[spark]`` extra): :func:`match` and :func:`run` over a Spark DataFrame of needs.

pyspark is imported only inside the functions that need it, so this package imports without the extra.
"""

from .job import Needs, SparkJob, as_needs, match, merge_top_k, read_needs, require_spark, run, session

__all__ = ["Needs", "SparkJob", "as_needs", "match", "merge_top_k", "read_needs", "require_spark", "run", "session"]
