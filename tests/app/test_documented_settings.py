"""Settings tested exactly as the docs show them: a videoqa.toml that holds one line.

README and docs/EVALUATION.md say that ``text_embedder = "use-numpy"`` alone switches the
packaged profile to the multilingual Universal Sentence Encoder. Before each backend owned its
default model, that line alone failed (``model 'sentence-transformers/all-MiniLM-L6-v2'
(use-numpy) not found``): the test that passed set the model too.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SAMPLE_MEDIA


def _videoqa(*args: str, config, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOQA_")}
    env.update(VIDEOQA_CONFIG=str(config), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["use-numpy", "combined", "by-language"])
def test_a_toml_holding_only_a_multilingual_text_embedder_indexes_and_searches(tmp_path, backend):
    config = tmp_path / "videoqa.toml"
    config.write_text(f'text_embedder = "{backend}"\n')
    index = ["--index-dir", str(tmp_path / "index")]
    models = _videoqa("models", "--json", *index, config=config, cwd=tmp_path)
    assert models.returncode == 0, models.stderr
    row = next(r for r in json.loads(models.stdout)["roles"]
               if r["role"] == "text_embedder" and r["profile"] == "packaged")
    assert row["backend"] == backend and row["found"], row
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "volcano_lecture.mp4").symlink_to(SAMPLE_MEDIA / "volcano_lecture.mp4")
    done = _videoqa("index", str(videos), "--no-progress", *index, config=config, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # a question in another language than the speech: the reason to choose this embedder
    found = _videoqa("search", "火山喷发时会发生什么", "--json", *index, config=config, cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert hits and hits[0]["name"] == "volcano_lecture.mp4" and hits[0]["channels"]["semantic"] > 0


@pytest.mark.slow
def test_the_combined_weight_as_the_docs_show_it(tmp_path):
    """README: ``text_embedder = "combined"`` and ``text_embedder_weight = 0.75`` in a videoqa.toml."""
    import numpy as np

    from app import VideoQA
    from app.settings import load_settings

    config = tmp_path / "videoqa.toml"
    config.write_text('text_embedder = "combined"\ntext_embedder_weight = 0.75\n')
    qa = VideoQA(load_settings(config=config, env={}), index_dir=str(tmp_path / "index"))
    embedder = qa.hub.require("text_embedder")
    assert embedder.backend_name == "combined" and embedder.weight == 0.75
    query = embedder.embed_query("how does the horizon seem?")
    minilm_dim = embedder.parts[0].dim
    # each part's unit vector, times sqrt(2) * its share of the score
    assert np.linalg.norm(query[:minilm_dim]) == pytest.approx(np.sqrt(2) * 0.75, abs=1e-4)
    assert np.linalg.norm(query[minilm_dim:]) == pytest.approx(np.sqrt(2) * 0.25, abs=1e-4)
