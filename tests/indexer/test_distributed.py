"""The Ray executor: the same catalog as the local executor, failures kept per file, dead workers replaced.

A local Ray with 2 CPUs is started once for the module (about 3 s); each worker loads
the packaged models once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.catalog import Catalog
from indexer.pipeline import IndexOptions
from indexer.writer import Indexer
from indexer.schema import IMAGE_SPACE, TEXT_SPACE
from tests.conftest import error_rate

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_MEDIA = ROOT / "sample_media"


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs, as on a small machine; shut down after the module."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    """sample_media's videos, in a folder of the test's own (the same bytes)."""
    folder = tmp_path_factory.mktemp("samples")
    for video in sorted(SAMPLE_MEDIA.glob("*.mp4")):
        shutil.copy(video, folder / video.name)
    return folder


def snapshot(index_dir: Path) -> dict:
    """Everything the catalog holds about each video, keyed by path (ids and run times left out)."""
    out = {}
    with Catalog(index_dir, readonly=True) as catalog:
        text_by_id, image_by_id = (dict(zip(ids.tolist(), matrix))
                                   for ids, matrix in map(catalog.vectors, (TEXT_SPACE, IMAGE_SPACE)))
        for video in catalog.videos():
            moments = catalog.moments_of(video.id)
            keyframes = catalog.keyframes_of(video.id)
            out[video.path] = {
                "content_id": video.content_id,
                "media": (round(video.duration, 3), round(video.fps, 3), video.width, video.height, video.has_audio,
                          video.language),
                "moments": [(round(m.start, 3), round(m.end, 3), m.kind, m.text, m.language) for m in moments],
                "keyframes": [(round(k.t, 3), k.width, k.height, k.jpeg) for k in keyframes],
                "text_vectors": [text_by_id[m.id] for m in moments if m.id in text_by_id],
                "image_vectors": [image_by_id[k.id] for k in keyframes if k.id in image_by_id],
            }
    return out


def assert_same_catalog(a: dict, b: dict) -> None:
    """The same videos, keyframes and moments. Whisper may write a word differently in a Ray worker
    (one CPU thread there, two here: "flower" for "flour" was seen), so transcripts are compared
    with a tolerance, and the text vectors of the moments whose text is the same."""
    assert sorted(a) == sorted(b)
    for path in a:
        for key in ("content_id", "media", "keyframes"):
            assert a[path][key] == b[path][key], (path, key)
        ma, mb = a[path]["moments"], b[path]["moments"]
        assert [m[2:3] + m[4:] for m in ma] == [m[2:3] + m[4:] for m in mb], (path, "moment kinds and languages")
        for x, y in zip(ma, mb):
            assert x[:2] == pytest.approx(y[:2], abs=0.3) and error_rate(x[3], y[3]) <= 0.25, (path, x, y)
        same_text = [x[3] == y[3] for x, y in zip(ma, mb)]
        assert len(a[path]["text_vectors"]) == len(b[path]["text_vectors"]), path
        for same, x, y in zip(same_text, a[path]["text_vectors"], b[path]["text_vectors"]):
            if same:
                np.testing.assert_allclose(x, y, atol=1e-4, err_msg=f"{path} text_vectors")
        assert len(a[path]["image_vectors"]) == len(b[path]["image_vectors"]), path
        for x, y in zip(a[path]["image_vectors"], b[path]["image_vectors"]):
            np.testing.assert_allclose(x, y, atol=1e-4, err_msg=f"{path} image_vectors")


@pytest.fixture(scope="module")
def local_index(hub, samples, tmp_path_factory) -> tuple[Path, dict]:
    index_dir = tmp_path_factory.mktemp("local-index")
    report = Indexer(index_dir, hub).index([samples])
    assert report.ok and report.count("indexed") == 4, report.to_dict()
    return index_dir, snapshot(index_dir)


@pytest.mark.slow
def test_ray_executor_builds_the_same_catalog_as_the_local_one(local_ray, hub, samples, local_index, tmp_path):
    from indexer.distributed import RayExecutor

    from models.hub import ModelHub

    driver_hub = ModelHub(hub.config)  # nothing loaded yet
    executor = RayExecutor(hub.config, IndexOptions())
    try:
        assert executor.workers == 2  # one per CPU of the local Ray
        report = Indexer(tmp_path, driver_hub, executor=executor).index([samples])
        info = executor.worker_info()
    finally:
        executor.close()
    assert report.ok and report.count("indexed") == 4, report.to_dict()
    assert all(r.moments > 0 and r.keyframes > 0 for r in report.results)
    snap = snapshot(tmp_path)
    assert snap, "nothing was indexed"
    assert_same_catalog(local_index[1], snap)
    # The models ran in the workers, each loaded once per worker, and never in this process.
    assert driver_hub.loaded() == []
    assert len({w["pid"] for w in info}) == 2 and os.getpid() not in {w["pid"] for w in info}
    for worker in info:
        assert (worker["torch_threads"], worker["whisper_threads"]) == (1, 1)  # its CPU, not the node's
        roles = [m["role"] for m in worker["models"]]
        assert len(roles) == len(set(roles)), roles
        assert {"transcriber", "voice_activity", "text_embedder"} <= set(roles)
    loaded = {m["role"]: m for m in report.models_loaded}
    assert loaded["transcriber"]["model"] == "tiny.en" and 1 <= loaded["transcriber"]["workers"] <= 2


@pytest.mark.slow
def test_ray_run_again_skips_and_reports_bad_files(local_ray, hub, samples, tmp_path):
    """A broken file fails alone, with its name and the problem; indexed files are skipped next time."""
    from indexer.distributed import RayExecutor, RayOptions

    folder = tmp_path / "videos"
    shutil.copytree(samples, folder)
    good = sorted(folder.glob("*.mp4"))
    (folder / "broken.mp4").write_bytes(good[0].read_bytes()[: 3000])  # cut inside the first boxes
    (folder / "noise.mkv").write_bytes(os.urandom(50_000))
    shutil.copy(good[1], folder / "copy.mp4")  # the same bytes as another new file of the batch
    index_dir = tmp_path / "index"
    # Files are hashed in Ray tasks, as on a cluster of several nodes (one node hashes in the driver).
    executor = RayExecutor(hub.config, IndexOptions(), RayOptions(hash_on_cluster=True))
    try:
        first = Indexer(index_dir, hub, executor=executor).index([folder])
        second = Indexer(index_dir, hub, executor=executor).index([folder])
    finally:
        executor.close()
    by_name = {Path(r.path).name: r for r in first.results}
    assert first.count("indexed") == 4 and first.count("failed") == 2 and len(first.results) == 7
    # Held back while its twin was extracted, then found by its content: extracted once.
    assert by_name["copy.mp4"].status == "skipped" and by_name["copy.mp4"].reason == f"same content as {good[1]}"
    assert not by_name["copy.mp4"].seconds.get("speech")
    for name in ("broken.mp4", "noise.mkv"):
        assert by_name[name].status == "failed" and by_name[name].reason and by_name[name].stage == "probe"
    again = {Path(r.path).name: r for r in second.results}
    assert all(again[p.name].status == "skipped" and again[p.name].reason == "unchanged" for p in good)
    assert again["copy.mp4"].status == "skipped" and again["copy.mp4"].reason.startswith("same content as")
    with Catalog(index_dir, readonly=True) as catalog:
        assert catalog.count_videos() == 4
        assert {Path(f["path"]).name for f in catalog.failures()} == {"broken.mp4", "noise.mkv"}


@pytest.mark.slow
def test_a_dead_worker_is_replaced_and_its_files_are_extracted_again(local_ray, hub, samples, local_index,
                                                                     tmp_path):
    """The worker's process is killed while it extracts a file (as a crash in a decoder would):
    Ray starts a new one and the file is extracted there; the other files wait for it."""
    import signal

    from indexer.distributed import RayExecutor, RayOptions

    executor = RayExecutor(hub.config, IndexOptions(), RayOptions(workers=1, in_flight=4))
    pid = ray.get(executor._actors[0].describe.remote())["pid"]
    killed = []

    def kill_after_first(done, total, result):
        if not killed:  # the worker has the second file of the batch, the others wait in this process
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

    try:
        report = Indexer(tmp_path, hub, executor=executor).index([samples], on_file=kill_after_first)
        (worker,) = executor.worker_info()
    finally:
        executor.close()
    assert killed and worker["pid"] != killed[0]  # a new worker process
    assert report.ok and report.count("indexed") == 4, report.to_dict()
    assert_same_catalog(local_index[1], snapshot(tmp_path))


@pytest.mark.slow
def test_cli_index_with_the_ray_executor(local_ray, samples, local_index, tmp_path):
    """videoqa index --executor ray --ray-address ADDR, on the Ray this module started."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VIDEOQA_PROFILE": "packaged", "VIDEOQA_WHISPER_MODEL": "tiny.en",
           "VIDEOQA_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "index", str(samples), "--index-dir", str(tmp_path / "index"),
         "--executor", "ray", "--ray-address", local_ray, "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["indexed"] == 4 and report["failed"] == 0
    assert_same_catalog(local_index[1], snapshot(tmp_path / "index"))


@pytest.mark.parametrize("resources, device, options, expected", [
    ({"CPU": 2.0}, "auto", {}, (2, 0.0)),  # this machine: one worker per CPU
    ({"CPU": 16.0}, "auto", {"cpus": 4}, (4, 0.0)),
    ({"CPU": 32.0, "GPU": 4.0}, "auto", {}, (4, 1.0)),  # one worker per GPU
    ({"CPU": 32.0, "GPU": 4.0}, "auto", {"gpus": 0.5}, (8, 0.5)),  # two share a GPU
    ({"CPU": 2.0, "GPU": 4.0}, "auto", {"gpus": 0.5}, (2, 0.5)),  # CPUs limit the GPU workers too
    ({"CPU": 32.0, "GPU": 4.0}, "cpu", {}, (32, 0.0)),  # device cpu: GPUs are left alone
    ({"CPU": 32.0, "GPU": 4.0}, "auto", {"workers": 3}, (3, 1.0)),
    ({"CPU": 0.5}, "auto", {}, (1, 0.0)),  # at least one worker
    ({"CPU": 8.0}, "cuda", {"workers": 2}, (2, 1.0)),  # GPU workers before the autoscaler adds GPU nodes
])
def test_plan_workers(resources, device, options, expected):
    from indexer.distributed import RayOptions, plan_workers

    assert plan_workers(resources, device, RayOptions(**options)) == expected


def test_plan_workers_refuses_contradictions():
    from indexer.distributed import RayOptions, plan_workers
    from models.errors import ConfigError

    with pytest.raises(ConfigError, match="device is cpu"):
        plan_workers({"CPU": 4.0, "GPU": 1.0}, "cpu", RayOptions(gpus=1.0))
    with pytest.raises(ConfigError, match="device is cuda but ray_worker_gpus is 0"):
        plan_workers({"CPU": 4.0, "GPU": 1.0}, "cuda", RayOptions(gpus=0.0))
    with pytest.raises(ConfigError, match="do not fit in the local Ray"):  # no GPU here: never starts
        plan_workers({"CPU": 2.0}, "cuda", RayOptions(), fixed=True)
    with pytest.raises(ConfigError, match="positive number of CPUs"):
        plan_workers({"CPU": 4.0}, "auto", RayOptions(cpus=0))
    # A local Ray started for the run never grows: workers that do not fit could never start.
    with pytest.raises(ConfigError, match="3 Ray workers of 1 CPU and 0 GPU do not fit in the local Ray"):
        plan_workers({"CPU": 2.0}, "auto", RayOptions(workers=3), fixed=True)
    assert plan_workers({"CPU": 2.0}, "auto", RayOptions(workers=3)) == (3, 0.0)  # a cluster may autoscale


def test_an_unreachable_cluster_is_one_clear_line(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VIDEOQA_PROFILE": "packaged"}
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "index", str(SAMPLE_MEDIA), "--index-dir", str(tmp_path / "index"),
         "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == [f"videoqa: error: cannot reach Ray at 127.0.0.1:{port}: Connection refused (is the cluster's "
                     "head running, and is this its GCS port, 6379, or its Ray Client port, 10001?)"], out.stderr
    with Catalog(tmp_path / "index", readonly=True) as catalog:  # the executor is made under the writer lock
        assert catalog.count_videos() == 0 and not catalog.failures()


def test_identify_file_hashes_only_the_file_the_writer_saw(tmp_path):
    """The hash may run on another node, later: a file changed since the writer's stat is refused."""
    from indexer.media import content_id
    from indexer.pipeline import FoundFile, identify_file

    video = tmp_path / "a.mp4"
    shutil.copy(sorted(SAMPLE_MEDIA.glob("*.mp4"))[0], video)
    st = video.stat()
    cid, error, seconds = identify_file(FoundFile(str(video), st.st_size, st.st_mtime_ns))
    assert (cid, error) == (content_id(video), None) and seconds >= 0
    assert identify_file(FoundFile(str(video), st.st_size, st.st_mtime_ns, "known"))[:2] == ("known", None)
    with open(video, "ab") as fh:
        fh.write(b"more")
    cid, error, _ = identify_file(FoundFile(str(video), st.st_size, st.st_mtime_ns))
    assert cid is None and "changed while it was being indexed" in error
    video.unlink()
    cid, error, _ = identify_file(FoundFile(str(video), st.st_size, st.st_mtime_ns))
    assert cid is None and error


@pytest.mark.slow
def test_a_missing_model_on_the_workers_stops_the_run_as_it_does_locally(local_ray, samples, tmp_path):
    from indexer.distributed import RayExecutor
    from models.errors import VideoQAError
    from models.hub import ModelHub, ModelsConfig, RoleConfig

    config = ModelsConfig(profile="packaged", cache_dir=tmp_path / "cache",
                          roles={"transcriber": RoleConfig(model="tiny.en", path=str(tmp_path / "no-such-model"))})
    errors = {}
    for name in ("local", "ray"):
        executor = RayExecutor(config, IndexOptions()) if name == "ray" else None
        with pytest.raises(VideoQAError) as caught:
            Indexer(tmp_path / name, ModelHub(config), executor=executor).index([samples])
        errors[name] = caught.value
        if executor is not None:
            executor.close()
        with Catalog(tmp_path / name, readonly=True) as catalog:
            assert catalog.count_videos() == 0 and not catalog.failures()  # no file blamed for it
    assert type(errors["ray"]) is type(errors["local"])  # the same class: the same exit code
    assert str(errors["ray"]).startswith(str(errors["local"]))
    assert "on Ray worker" in str(errors["ray"])
