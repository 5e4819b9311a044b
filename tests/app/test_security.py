"""Security: nothing unpickled from index or model files, uploads bounded, local binding, relative paths."""

import ast
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app.settings import load_settings
from app.web.render import _where
from tests.conftest import Server

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("models", "indexer", "retriever", "app")


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            yield node, owner, name


def test_no_code_reads_a_pickle_except_the_whoosh_allow_list():
    """A static check of every module: pickle, torch.load without weights_only=True, numpy with allow_pickle."""
    problems = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            rel = path.relative_to(ROOT).as_posix()
            for node, owner, name in _calls(tree):
                keywords = {k.arg: k.value for k in node.keywords}
                if owner in ("pickle", "cPickle", "joblib", "dill", "marshal") and name in ("load", "loads"):
                    problems.append(f"{rel}:{node.lineno} {owner}.{name}")
                if owner == "torch" and name == "load":
                    flag = keywords.get("weights_only")
                    if not (isinstance(flag, ast.Constant) and flag.value is True):
                        problems.append(f"{rel}:{node.lineno} torch.load without weights_only=True")
                if owner in ("np", "numpy") and name == "load":
                    flag = keywords.get("allow_pickle")
                    if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                        problems.append(f"{rel}:{node.lineno} numpy.load with allow_pickle")
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and any(
                        isinstance(b, ast.Attribute) and b.attr == "Unpickler" for b in node.bases):
                    methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
                    if rel != "indexer/keyword_index.py" or "find_class" not in methods:
                        problems.append(f"{rel}:{node.lineno} an Unpickler without an allow-list")
    assert not problems, problems


def test_the_server_binds_to_this_machine_by_default(tmp_path):
    assert load_settings({}, env={}).host == "127.0.0.1"


def test_library_paths_are_shown_relative_to_the_library(tmp_path):
    library = tmp_path / "library"
    assert _where(str(library / "trips" / "2024" / "a.mp4"), library) == "trips/2024"
    assert _where(str(library / "a.mp4"), library) == "."
    assert _where("/home/someone/private/videos/b.mp4", library) == "videos"  # outside: the folder's name only


@pytest.mark.slow
def test_uploads_over_the_limit_are_refused(settings_env, tmp_path):
    srv = Server({**settings_env, "VIDEOQA_INDEX_DIR": str(tmp_path / "index"),
                  "VIDEOQA_LIBRARY_DIR": str(tmp_path / "library"), "VIDEOQA_MAX_UPLOAD_MB": "1"})
    try:
        boundary = "videoqa-test-boundary"

        def post(size: int, name: str) -> int:
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                    "Content-Type: video/mp4\r\n\r\n").encode() + b"\0" * size + f"\r\n--{boundary}--\r\n".encode()
            request = urllib.request.Request(f"{srv.url}/gradio_api/upload", data=body, method="POST",
                                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status
            except urllib.error.HTTPError as err:
                return err.code

        assert post(2 * 1024 * 1024, "big.mp4") == 413
        assert post(1000, "../../escape.mp4") == 200  # small enough; kept in Gradio's own upload folder
        assert not (tmp_path / "escape.mp4").exists() and not (tmp_path.parent / "escape.mp4").exists()
    finally:
        srv.stop()
