import pytest

from retriever.fusion import fuse


def test_weighted_sum():
    fused = fuse({"keyword": {1: 1.0, 2: 0.5}, "semantic": {2: 0.8, 3: 0.4}}, {"keyword": 1.0, "semantic": 0.5})
    assert fused == pytest.approx({1: 1.0, 2: 0.9, 3: 0.2})


def test_zero_weight_drops_a_channel():
    assert fuse({"keyword": {1: 1.0}, "semantic": {2: 1.0}}, {"keyword": 0.0}) == {2: 1.0}


def test_reciprocal_rank_fusion():
    fused = fuse({"a": {1: 0.9, 2: 0.1}, "b": {2: 0.7, 1: 0.6}}, {}, method="rrf", rrf_k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[2] == pytest.approx(1 / 62 + 1 / 61)


def test_unknown_fusion():
    with pytest.raises(ValueError, match="rrf"):
        fuse({}, {}, method="max")
