"""Okapi BM25, the ranking function of the memory index and of PostgreSQL's final order.

``score`` ranks one passage (its stemmed words) for a query's stems, given how
many of the knowledge base's passages hold each stem. PostgreSQL's own
``ts_rank`` orders passages less well than BM25 on the eval set (it has no
inverse document frequency), so the PostgreSQL index takes its candidates from
the GIN index and orders them with this.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

K1 = 1.2
B = 0.75


def idf(count: int, total: int) -> float:
    return math.log(1 + (total - count + 0.5) / (count + 0.5))


def score(
    query: Iterable[str],
    terms: Counter[str],
    length: int,
    *,
    counts: Mapping[str, int],
    total: int,
    average_length: float,
) -> float:
    result = 0.0
    norm = K1 * (1 - B + B * length / max(average_length, 1.0))
    for term in set(query):
        tf = terms.get(term, 0)
        if tf:
            result += idf(counts.get(term, 0), total) * tf * (K1 + 1) / (tf + norm)
    return result
