"""The container files: the Dockerfile mirrors `make install`, docker-compose.yml wires what the app needs.

No Docker engine runs here, so nothing is built. The Dockerfile and Makefile checks read the files;
the compose checks parse what `docker-compose config` resolves (make test installs docker-compose).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from app.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (ROOT / "Makefile").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SETTING_ENVS = {s.env for s in SETTINGS}


# -- the Dockerfile against the Makefile -------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in DOCKERFILE.splitlines()
                                           if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in (raw.strip() for raw in text.splitlines()) if line]


def dockerfile_args() -> dict[str, str]:
    args = {}
    for instr, rest in dockerfile_instructions():
        if instr == "ARG" and "=" in rest:
            name, value = rest.split("=", 1)
            args[name.strip()] = shlex.split(value)[0] if value.strip() else ""
    return args


def dockerfile_env() -> dict[str, str]:
    env = {}
    for instr, rest in dockerfile_instructions():
        if instr == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def pip_installs() -> list[list[str]]:
    """The arguments of every `pip install` the Dockerfile runs."""
    runs = " && ".join(rest for instr, rest in dockerfile_instructions() if instr == "RUN")
    return [shlex.split(cmd.split("pip install", 1)[1]) for cmd in runs.split("&&") if "pip install" in cmd]


def makefile_torch() -> list[str]:
    match = re.search(r"^TORCH\s*:=\s*(.+)$", MAKEFILE, re.M)
    assert match, "the Makefile has no TORCH := line"
    return match.group(1).split()


def extras(spec: str) -> set[str]:
    match = re.search(r"\.\[([^\]]*)\]", spec)
    assert match, f"no extras in {spec!r}"
    return {e.strip() for e in match.group(1).split(",")}


def test_the_image_is_the_interpreter_ci_tests():
    froms = [rest.split()[0] for instr, rest in dockerfile_instructions() if instr == "FROM"]
    assert froms == ["python:3.11-slim-bookworm"]


def test_torch_pins_are_the_makefiles():
    pins = makefile_torch()
    assert sorted(dockerfile_args()["TORCH"].split()) == sorted(pins)
    installs = pip_installs()
    torch_only = [a for a in installs if "$TORCH" in a and not any(x.startswith(".") for x in a)]
    assert torch_only, "torch and torchvision are not installed on their own first"
    assert "--index-url" in torch_only[0] and torch_only[0][torch_only[0].index("--index-url") + 1] == "$TORCH_INDEX"
    assert dockerfile_args()["TORCH_INDEX"] == "https://download.pytorch.org/whl/cpu"
    project = [a for a in installs if any(x.startswith(".[") for x in a)]
    assert len(project) == 1 and "$TORCH" in project[0], "the project is installed once, with the torch pins"
    assert installs.index(torch_only[0]) < installs.index(project[0])


def test_extras_are_the_makefiles_without_test():
    make_install = re.search(r"pip install .*-e\s+'(\.\[[^\]]*\])'", MAKEFILE)
    assert make_install, "the Makefile's pip install -e '.[...]' line is gone"
    make_extras = extras(make_install.group(1))
    assert {"packaged", "full", "cluster", "test"} <= make_extras
    project = [a for a in pip_installs() if any(x.startswith(".[") for x in a)][0]
    docker_extras = extras(next(x for x in project if x.startswith(".[")))
    assert docker_extras == make_extras - {"test"}


def test_the_image_copies_every_package_and_what_the_build_reads():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.split(".")[0] for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set()
    for instr, rest in dockerfile_instructions():
        if instr == "COPY":
            copied.update(shlex.split(rest)[:-1])
    assert packages | {"pyproject.toml", pyproject["project"]["readme"]} <= copied
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert {".venv", ".git"} <= set(ignored)
    for path in copied:
        assert not any(fnmatch.fnmatch(path, pattern) for pattern in ignored), f".dockerignore hides {path}"


def test_the_image_runs_as_a_user_offline_on_all_addresses_with_a_health_check():
    instructions = dockerfile_instructions()
    users = [rest for instr, rest in instructions if instr == "USER"]
    assert users and users[-1] not in ("root", "0")
    env = dockerfile_env()
    assert env["HF_HUB_OFFLINE"] == "1" and env["VIDEOQA_HOST"] == "0.0.0.0"
    assert {name for name in env if name.startswith("VIDEOQA_")} <= SETTING_ENVS
    site = "/usr/local/lib/python3.11/site-packages"
    assert env["LD_LIBRARY_PATH"].split(":") == [f"{site}/nvidia/cublas/lib", f"{site}/nvidia/cudnn/lib"]
    health = [rest for instr, rest in instructions if instr == "HEALTHCHECK"]
    assert len(health) == 1 and "/healthz" in health[0] and "urllib" in health[0]
    assert [rest for instr, rest in instructions if instr == "CMD"][-1] == '["videoqa", "serve"]'


def test_make_test_checks_the_compose_file():
    test_recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", MAKEFILE, re.M)
    assert test_recipe and "docker-compose -f docker-compose.yml config -q" in test_recipe.group(1)
    deps = re.search(r"^SYSTEM_DEPS\s*:=\s*(.+)$", MAKEFILE, re.M)
    assert deps and "docker-compose:docker-compose" in deps.group(1).split()


# -- docker-compose.yml, as docker-compose resolves it ------------------------------------------

def compose_config(*profiles: str, **env: str) -> dict:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (make test installs it)")
    args = [exe, "-f", "docker-compose.yml"]
    for profile in profiles:
        args += ["--profile", profile]
    clean = {k: v for k, v in os.environ.items() if k not in ("VIDEOS", "HF_HUB_OFFLINE", "VIDEOQA_AUTH")}
    done = subprocess.run([*args, "config"], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


@pytest.fixture(scope="module")
def compose() -> dict:
    return compose_config()


def ports(service: dict) -> list[tuple[str, str, str]]:
    """(host ip, published, target) of each published port, short or long syntax."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((port.get("host_ip", ""), str(port.get("published", "")), str(port["target"])))
        else:
            parts = str(port).split("/")[0].split(":")
            out.append(("", *parts) if len(parts) == 2 else tuple(parts))
    return out


def mounts(service: dict) -> dict[str, tuple[str, bool]]:
    """target -> (source, read only), short or long syntax."""
    out = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            out[volume["target"]] = (volume["source"], bool(volume.get("read_only")))
        else:
            source, target, *mode = volume.split(":")
            out[target] = (source, "ro" in (mode[0].split(",") if mode else []))
    return out


def gpu_devices(service: dict) -> list[dict]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


SERVICES = ("app", "indexer", "app-gpu", "indexer-gpu")


def test_compose_validates_with_each_profile():
    for profiles in ((), ("indexer",), ("gpu",), ("indexer", "gpu")):
        assert set(SERVICES) <= set(compose_config(*profiles)["services"])


def test_app_serves_on_this_machine_only_with_a_health_check(compose):
    app = compose["services"]["app"]
    assert "profiles" not in app, "app must start with a plain `docker compose up`"
    assert app["command"] == ["videoqa", "serve"]
    assert ports(app) == [("127.0.0.1", "7860", "7860")]
    assert app["environment"]["VIDEOQA_HOST"] == "0.0.0.0" and str(app["environment"]["VIDEOQA_PORT"]) == "7860"
    assert any("/healthz" in part for part in app["healthcheck"]["test"])
    for name in SERVICES:
        assert all(host == "127.0.0.1" for host, _, _ in ports(compose["services"][name])), name


def test_indexer_is_one_shot_in_its_profile_with_the_videos_read_only(compose):
    indexer = compose["services"]["indexer"]
    assert indexer["profiles"] == ["indexer"]
    assert indexer["command"] == ["videoqa", "index", "/videos"]
    assert mounts(indexer)["/videos"] == (str(ROOT / "sample_media"), True)
    assert not ports(indexer)


def test_named_volumes_hold_the_index_the_library_and_the_model_caches(compose):
    assert {"index", "library", "models"} <= set(compose["volumes"])
    for name in SERVICES:
        service = compose["services"][name]
        env, mounted = service["environment"], mounts(service)
        assert set(env) - {"HF_HUB_OFFLINE", "HF_HOME"} <= SETTING_ENVS, f"{name}: an environment name is no setting"
        by_volume = {source: target for target, (source, _) in mounted.items()}
        assert env["VIDEOQA_INDEX_DIR"] == by_volume["index"]
        assert env["VIDEOQA_LIBRARY_DIR"] == by_volume["library"]
        for cache in ("HF_HOME", "VIDEOQA_CACHE_DIR"):
            assert env[cache].startswith(by_volume["models"] + "/"), f"{name}: {cache} is not in the models volume"
        assert not any(read_only for source, read_only in mounted.values() if source in compose["volumes"])
        assert str(env["HF_HUB_OFFLINE"]) == "1"


def test_every_service_sees_the_same_index_and_videos_as_the_indexer():
    # The catalog stores absolute paths that the UI streams: the app must see /videos as the indexer did.
    compose = compose_config(VIDEOS="/srv/media")
    expected = mounts(compose["services"]["indexer"])
    assert expected["/videos"] == ("/srv/media", True)
    env = compose["services"]["indexer"]["environment"]
    for name in SERVICES:
        service = compose["services"][name]
        assert mounts(service) == expected, name
        for key in ("VIDEOQA_INDEX_DIR", "VIDEOQA_LIBRARY_DIR", "VIDEOQA_CACHE_DIR", "HF_HOME"):
            assert service["environment"][key] == env[key], (name, key)


def test_compose_paths_are_the_images(compose):
    image_env = dockerfile_env()
    for key in ("VIDEOQA_INDEX_DIR", "VIDEOQA_LIBRARY_DIR", "VIDEOQA_CACHE_DIR", "HF_HOME", "VIDEOQA_HOST"):
        assert compose["services"]["app"]["environment"][key] == image_env[key], key


def test_gpu_services_reserve_an_nvidia_device_and_use_the_cuda_build(compose):
    for name, twin in (("app-gpu", "app"), ("indexer-gpu", "indexer")):
        service, cpu = compose["services"][name], compose["services"][twin]
        assert service["profiles"] == ["gpu"]
        assert gpu_devices(service) == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
        assert service["environment"]["VIDEOQA_DEVICE"] == "cuda"
        assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d+", service["build"]["args"]["TORCH_INDEX"])
        assert service["image"] != cpu["image"]
        assert service["command"] == cpu["command"]
        assert {k: v for k, v in service["environment"].items() if k != "VIDEOQA_DEVICE"} == cpu["environment"]
    for name in ("app", "indexer"):
        service = compose["services"][name]
        assert not gpu_devices(service) and "VIDEOQA_DEVICE" not in service["environment"]
        assert service["build"]["args"]["TORCH_INDEX"] == dockerfile_args()["TORCH_INDEX"]


def test_the_deploy_guide_names_real_settings_and_services():
    guide = (ROOT / "docs" / "DEPLOY.md").read_text()
    assert re.findall(r"^## (.+)$", guide, re.M) == ["One machine", "Containers", "A GPU host", "Large libraries",
                                                     "A Ray cluster"]
    envs = set(re.findall(r"\bVIDEOQA_[A-Z_]*[A-Z]\b", guide))
    assert envs and envs <= SETTING_ENVS, envs - SETTING_ENVS
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    named = set(re.findall(r"docker compose .*?\b(?:run --rm|up -d|restart|stop|start|logs)"
                           r"(?: -[ev] \S+)* ([a-z][a-z-]*)", guide))
    assert named and named <= set(compose["services"]), named - set(compose["services"])
    setting_names = {s.name for s in SETTINGS}
    for name in ("keyword_tantivy_above", "vector_ivf_above", "vector_index", "vector_nprobe", "keyword_engine"):
        assert f"`{name}" in guide and name in setting_names, name


# -- KubeRay ------------------------------------------------------------------------------------

RAYJOB = yaml.safe_load((ROOT / "deploy" / "kuberay" / "rayjob.yaml").read_text())


def rayjob_pods() -> list[dict]:
    cluster = RAYJOB["spec"]["rayClusterSpec"]
    return [cluster["headGroupSpec"]["template"]["spec"],
            *(group["template"]["spec"] for group in cluster["workerGroupSpecs"])]


def test_the_rayjob_entrypoint_is_a_valid_videoqa_command():
    from app.cli import build_parser

    argv = shlex.split(RAYJOB["spec"]["entrypoint"])
    assert argv[0] == "videoqa"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "index" and args.paths == [Path("/videos")]
    assert (args.executor, args.ray_address) == ("ray", "auto")


def test_rayjob_pods_share_image_and_videos_path_and_only_the_head_writes_the_index():
    head, *workers = rayjob_pods()
    assert workers
    images = {c["image"] for pod in rayjob_pods() for c in pod["containers"]}
    assert len(images) == 1  # driver, head and workers run the same Ray, Python and videoqa
    for pod in rayjob_pods():
        (container,) = pod["containers"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/videos"]["readOnly"] is True
        claims = {v["name"]: v["persistentVolumeClaim"] for v in pod["volumes"]}
        assert claims[mounts["/videos"]["name"]]["claimName"] == "videoqa-videos"
        env = {e["name"]: e["value"] for e in container["env"]}
        assert {n for n in env if n.startswith("VIDEOQA_")} <= SETTING_ENVS
        assert env["HF_HUB_OFFLINE"] == "1"
        if pod is head:
            assert mounts[env["VIDEOQA_INDEX_DIR"]].get("readOnly") is not True
        else:
            assert env["VIDEOQA_INDEX_DIR"] not in mounts  # workers never touch the index
            assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert RAYJOB["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def test_the_kuberay_image_adds_rays_server_parts_at_the_installed_version():
    text = (ROOT / "deploy" / "kuberay" / "Dockerfile").read_text()
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)
    assert """"ray[default]==$(python -c 'import ray; print(ray.__version__)')\"""" in text
    assert "wget" in text and re.search(r"^USER videoqa$", text, re.M)
