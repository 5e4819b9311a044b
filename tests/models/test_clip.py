"""ClipFrameEmbedder on a tiny random-weight open_clip model of the real architecture."""

import json
import shutil

import numpy as np
import pytest

from models import create
from models.clip_embedder import ClipFrameEmbedder
from models.errors import ConfigError, ModelNotFoundError
from models.testing.tiny_clip import TINY_CLIP_CONFIG, make_tiny_clip
from models.types import FrameEmbedder


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return make_tiny_clip(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def embedder(clip_dir):
    return create("frame_embedder", "open-clip", path=str(clip_dir), device="cpu")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (48 + 8 * i, 64, 3), dtype=np.uint8) for i in range(5)]


def _is_normalised(vecs, n, dim):
    return vecs.shape == (n, dim) and vecs.dtype == np.float32 and np.allclose(np.linalg.norm(vecs, axis=1), 1.0,
                                                                              atol=1e-5)


def test_is_a_frame_embedder_and_loads_lazily(clip_dir):
    e = ClipFrameEmbedder(path=str(clip_dir), device="cpu")
    assert not e.loaded
    assert e.locate().source == "local path" and not e.loaded
    assert e.dim == TINY_CLIP_CONFIG["model_cfg"]["embed_dim"] and e.loaded
    assert isinstance(e, FrameEmbedder)  # after: on Python 3.11, isinstance reads the dim property


def test_image_and_text_vectors_are_normalised(embedder, images):
    assert _is_normalised(embedder.embed_images(images), len(images), embedder.dim)
    long = " ".join(["bicycle"] * 200)  # longer than the 77-token context: truncated, not an error
    assert _is_normalised(embedder.embed_texts(["a red bicycle", "a street at night", long]), 3, embedder.dim)


def test_batching_does_not_change_the_vectors(clip_dir, embedder, images):
    small = ClipFrameEmbedder(path=str(clip_dir), device="cpu", batch_size=2)
    np.testing.assert_allclose(small.embed_images(images), embedder.embed_images(images), atol=1e-5)
    texts = [f"text number {i}" for i in range(5)]
    np.testing.assert_allclose(small.embed_texts(texts), embedder.embed_texts(texts), atol=1e-5)


def test_bfloat16_as_on_a_gpu(clip_dir, embedder, images):
    half = ClipFrameEmbedder(path=str(clip_dir), device="cpu", dtype="bfloat16")
    vecs = half.embed_images(images[:2])
    assert _is_normalised(vecs, 2, embedder.dim)
    assert np.all(np.sum(vecs * embedder.embed_images(images[:2]), axis=1) > 0.98)
    assert _is_normalised(half.embed_texts(["a dog"]), 1, embedder.dim)


def test_empty_inputs(embedder):
    assert embedder.embed_images([]).shape == (0, embedder.dim)
    assert embedder.embed_texts([]).shape == (0, embedder.dim)


def test_different_inputs_give_different_vectors(embedder, images):
    vecs = embedder.embed_images(images[:2] + [np.zeros((64, 64, 3), np.uint8)])
    assert not np.allclose(vecs[0], vecs[1], atol=1e-3) and not np.allclose(vecs[0], vecs[2], atol=1e-3)
    texts = embedder.embed_texts(["a dog", "a volcano"])
    assert not np.allclose(texts[0], texts[1], atol=1e-3)


def test_grey_and_rgba_images_are_accepted(embedder, images):
    rgb = images[0]
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    vecs = embedder.embed_images([rgb, rgba, rgb[:, :, 0]])
    np.testing.assert_allclose(vecs[0], vecs[1], atol=1e-6)
    with pytest.raises(ValueError):
        embedder.embed_images([rgb.astype(np.float32)])


def test_a_weights_file_beside_its_config_loads(tmp_path, clip_dir, embedder, images, caplog):
    e = ClipFrameEmbedder(path=str(clip_dir / "open_clip_model.safetensors"), device="cpu")
    np.testing.assert_allclose(e.embed_images(images), embedder.embed_images(images), atol=1e-6)
    # A file open_clip would not pick itself (a fine-tune saved beside the original) is loaded
    # into the model built from the config, without open_clip's "initialized randomly" warning.
    shutil.copytree(clip_dir, tmp_path / "clip")
    tuned = tmp_path / "clip" / "finetuned.safetensors"
    shutil.copy(clip_dir / "open_clip_model.safetensors", tuned)
    e = ClipFrameEmbedder(path=str(tuned), device="cpu")
    np.testing.assert_allclose(e.embed_texts(["a dog"]), embedder.embed_texts(["a dog"]), atol=1e-6)
    assert "initialized randomly" not in caplog.text


def test_a_bare_weights_file_takes_its_architecture_from_the_model_name(tmp_path, clip_dir, embedder, images):
    import open_clip

    # The tiny architecture, made known to open_clip as its built-in ViT-B-32 is.
    (tmp_path / "videoqa-tiny-vit.json").write_text(json.dumps(TINY_CLIP_CONFIG["model_cfg"]))
    open_clip.add_model_config(tmp_path / "videoqa-tiny-vit.json")
    bare = tmp_path / "weights" / "tiny.safetensors"
    bare.parent.mkdir()
    shutil.copy(clip_dir / "open_clip_model.safetensors", bare)
    e = ClipFrameEmbedder("videoqa-tiny-vit/random", path=str(bare), device="cpu")
    np.testing.assert_allclose(e.embed_images(images), embedder.embed_images(images), atol=1e-6)
    np.testing.assert_allclose(e.embed_texts(["a dog"]), embedder.embed_texts(["a dog"]), atol=1e-6)

    # A folder with that one file works the same; a name without an architecture cannot.
    assert np.allclose(ClipFrameEmbedder("videoqa-tiny-vit/random", path=str(bare.parent), device="cpu")
                       .embed_texts(["a dog"]), e.embed_texts(["a dog"]), atol=1e-6)
    with pytest.raises(ConfigError, match="architecture"):
        ClipFrameEmbedder("hf-hub:someone/some-clip", path=str(bare), device="cpu").load()


def test_missing_weights_say_where_it_looked(tmp_path, clip_dir):
    with pytest.raises(ModelNotFoundError) as err:
        ClipFrameEmbedder("hf-hub:videoqa-tests/no-such-clip", cache_dir=tmp_path).locate()
    assert "frame_embedder" in str(err.value) and "videoqa-tests/no-such-clip" in str(err.value)
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    shutil.copy(clip_dir / "open_clip_config.json", config_only)
    with pytest.raises(ModelNotFoundError, match="no open_clip weights"):
        ClipFrameEmbedder(path=str(config_only), device="cpu").load()


def test_default_model_looks_in_the_hub_cache_for_the_laion_repository():
    e = ClipFrameEmbedder()
    assert e.model_name == "ViT-B-32/laion2b_s34b_b79k"
    assert e.hf_repo == "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"


def test_real_frames(shared_media, embedder):
    cv2 = pytest.importorskip("cv2")
    video = shared_media / "video" / "scenecuts_bikes_street.mp4"
    if not video.exists():
        pytest.skip(f"{video} is missing")
    cap = cv2.VideoCapture(str(video))
    frames = []
    for index in (0, 60):
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = cap.read()
        assert ok
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    vecs = embedder.embed_images(frames)
    assert _is_normalised(vecs, 2, embedder.dim)
    assert not np.allclose(vecs[0], vecs[1], atol=1e-4)


def test_text_vectors_skip_the_padding_exactly(embedder):
    import open_clip
    import torch

    model = embedder._model
    assert type(model) is open_clip.CLIP and model.text_pool_type == "argmax"  # the trimmed path runs
    texts = ["a dog", "a red bicycle leaning on a wall in the rain at night", "x"]
    tokens = embedder._tokenizer(texts)
    with torch.inference_mode():
        full = model.encode_text(tokens)  # all 77 positions
        trimmed = embedder._encode_text(tokens)
    assert int(tokens.argmax(dim=-1).max()) + 1 < tokens.shape[1]
    torch.testing.assert_close(trimmed, full, rtol=1e-4, atol=1e-5)
