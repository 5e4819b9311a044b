"""Fusing channel scores per video: a weighted sum (the reference design) or reciprocal-rank fusion."""

from __future__ import annotations

from typing import Mapping

__all__ = ["FUSIONS", "fuse"]

FUSIONS = ("sum", "rrf")


def fuse(channels: Mapping[str, Mapping[int, float]], weights: Mapping[str, float],
         method: str = "sum", rrf_k: int = 60) -> dict[int, float]:
    """Combine {channel: {key: score in [0, 1]}} into {key: fused score}.

    ``sum``: the weighted sum of the normalised scores. ``rrf``: the weighted sum of
    ``1 / (rrf_k + rank)`` over the channels where the key is ranked.
    """
    if method not in FUSIONS:
        raise ValueError(f"invalid fusion {method!r}, expected one of: {', '.join(FUSIONS)}")
    fused: dict[int, float] = {}
    for name, scores in channels.items():
        w = weights.get(name, 1.0)
        if w == 0 or not scores:
            continue
        if method == "sum":
            for key, s in scores.items():
                fused[key] = fused.get(key, 0.0) + w * s
        else:
            ranked = sorted(scores, key=lambda k: scores[k], reverse=True)
            for rank, key in enumerate(ranked, start=1):
                fused[key] = fused.get(key, 0.0) + w / (rrf_k + rank)
    return fused
