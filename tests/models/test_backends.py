"""One shared test class per role Protocol; every implementation of the role runs it."""

import numpy as np
import pytest

from tests.conftest import JFK_TEXT, error_rate
from models import ModelHub, ModelsConfig, RoleConfig
from models.types import TextEmbedder, Transcriber, VoiceDetector


@pytest.fixture(scope="module")
def jfk_audio(shared_media):
    from indexer.media import decode_audio

    return decode_audio(shared_media / "audio" / "en_jfk_inaugural_ask-not.flac")


def _hub(tmp_path_factory, **roles):
    return ModelHub(ModelsConfig(profile="packaged", cache_dir=tmp_path_factory.mktemp("cache"),
                                 roles={k: RoleConfig(**v) for k, v in roles.items()}))


class VoiceDetectorContract:
    def test_is_a_voice_detector(self, vad):
        assert isinstance(vad, VoiceDetector)

    def test_finds_the_speech_and_not_the_silence(self, vad, jfk_audio):
        padded = np.concatenate([np.zeros(16000 * 3, np.float32), jfk_audio, np.zeros(16000 * 3, np.float32)])
        regions = vad.speech_regions(padded, 16000)
        assert regions
        assert 3.0 <= regions[0].start <= 4.5
        assert 12.5 <= regions[-1].end <= 14.5
        assert vad.speech_regions(np.zeros(16000 * 5, np.float32), 16000) == []
        assert vad.speech_regions(np.zeros(0, np.float32), 16000) == []


class TestSilero(VoiceDetectorContract):
    @pytest.fixture(scope="class")
    def vad(self, tmp_path_factory):
        return _hub(tmp_path_factory).required.voice_activity


class TranscriberContract:
    def test_is_a_transcriber(self, transcriber):
        assert isinstance(transcriber, Transcriber)

    def test_jfk_against_its_ground_truth(self, transcriber, jfk_audio):
        result = transcriber.transcribe(jfk_audio)
        assert error_rate(JFK_TEXT, result.text) <= 0.1
        assert result.language == "en"
        assert result.segments[0].start < 1.0 and 10.0 < result.segments[-1].end <= 11.5

    def test_prompt_is_accepted(self, transcriber, jfk_audio):
        result = transcriber.transcribe(jfk_audio[: 16000 * 4], prompt="Inaugural address, 1961.")
        assert error_rate("and so my fellow americans", result.text) <= 0.4


class TestFasterWhisperTinyEn(TranscriberContract):
    @pytest.fixture(scope="class")
    def transcriber(self, tmp_path_factory):
        return _hub(tmp_path_factory, transcriber={"model": "tiny.en"}).required.transcriber


@pytest.mark.slow
class TestFasterWhisperBase(TranscriberContract):
    @pytest.fixture(scope="class")
    def transcriber(self, tmp_path_factory):
        return _hub(tmp_path_factory, transcriber={"model": "base"}).required.transcriber


class TextEmbedderContract:
    def test_is_a_text_embedder(self, embedder):
        assert isinstance(embedder, TextEmbedder)

    def test_vectors_are_normalised_and_meaningful(self, embedder):
        docs = embedder.embed_documents(["Lava flows down the volcano during the eruption.",
                                         "Knead the dough and bake the bread in the oven."])
        assert docs.shape == (2, embedder.dim) and docs.dtype == np.float32
        assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
        q = embedder.embed_query("what comes out of a volcano?")
        assert q.shape == (embedder.dim,)
        assert float(docs[0] @ q) > float(docs[1] @ q)
        assert embedder.embed_documents([]).shape == (0, embedder.dim)


class TestMiniLM(TextEmbedderContract):
    @pytest.fixture(scope="class")
    def embedder(self, tmp_path_factory):
        e = _hub(tmp_path_factory, text_embedder={"backend": "sentence-transformers"}).required.text_embedder
        assert e.dim == 384
        return e


class TestPackagedTextEmbedder(TextEmbedderContract):
    """The packaged default: MiniLM between English texts, USE otherwise (models/language_embedder.py)."""

    @pytest.fixture(scope="class")
    def embedder(self, tmp_path_factory):
        e = _hub(tmp_path_factory).required.text_embedder
        assert e.backend_name == "by-language" and e.dim == 384 + 2 * 512
        return e
