"""Per-video extraction on Ray workers; the catalog writer stays in the indexing process.

``videoqa index --executor ray`` builds a :class:`RayExecutor`. It starts a pool of Ray
actors; each builds its own :class:`~models.hub.ModelHub` from the same model settings,
so every model is loaded once per worker and reused for every file that worker gets.
A worker runs :func:`indexer.pipeline.extract` (decode, keyframes, VAD, speech,
descriptions, vectors) on one file at a time and returns plain data; the indexing
process, the only writer, commits each result to the catalog as it arrives. The
content hash of each new file (what makes indexing incremental) is computed by small
Ray tasks spread over the nodes of a multi-node cluster, so the writer's machine does not
read the library.

* Placement: with GPUs in the cluster (and ``device`` not ``cpu``) each worker reserves
  ``gpus`` of one (1 unless set), else ``cpus`` CPUs; the pool has one worker per slot
  that fits unless ``workers`` says otherwise.
* Backpressure: each worker has one file at a time, and ``in_flight - 1`` more per
  worker are identified ahead, so results never pile up in the object store faster than
  the writer stores them.
* Failures: a file that cannot be read comes back as a failure like in the local
  executor. When a worker process dies (a crash in a native decoder, out of memory) Ray
  restarts it and runs its file once more on the new process (the actor's
  ``max_restarts`` and ``max_task_retries``); a file that kills a second worker is
  reported failed, and the batch goes on; a worker that dies more than ``_MAX_RESTARTS``
  times stops the run. A missing model stops the run, as it does locally.
* Why not ``ray.util.ActorPool``: it raises a failed task's error without saying which
  submission it was (so the file could not be reported by name), and it drops a worker
  that died instead of waiting for Ray to restart it. The dispatch below is the part of
  a pool it would replace: idle started workers, and the files identified ahead.
* The files must be readable at the same path on every node (a shared mount), and
  videoqa must be installed on the nodes (the same image or environment as the driver).
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator

from indexer.pipeline import (
    FoundFile, Extraction, Identified, IndexOptions, Job, extract, identify_file, identify_here,
)
from models.errors import ConfigError, VideoQAError
from models.hub import ModelHub, ModelsConfig, RoleConfig
from models.registry import ROLES

__all__ = ["RayOptions", "RayExecutor", "plan_workers"]

log = logging.getLogger(__name__)

_MAX_RESTARTS = 4  # per worker


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: $RAY_ADDRESS, else a new local Ray; "auto"; "ray://head:10001"
    workers: int = 0  # 0: as many as the cluster's resources hold
    cpus: float = 1.0  # CPUs reserved by each worker
    gpus: float | None = None  # GPUs per worker; None: 1 when the cluster has GPUs (and device is not cpu)
    in_flight: int = 2  # files queued per worker
    local_cpus: int | None = None  # CPUs of a new local Ray (None: all of this machine's)
    hash_on_cluster: bool | None = None  # hash new files in Ray tasks (None: when the cluster has several nodes)


def _with_threads(config: ModelsConfig, threads: int) -> ModelsConfig:
    """``config`` with every model's CPU threads bounded to a worker's reservation.

    Left alone, torch, CTranslate2 and numpy each start a thread per core of the node, and
    workers sharing a node fight over the cores. Options set by the user are kept.
    """
    roles = {}
    for spec in ROLES:
        over = config.roles.get(spec.role, RoleConfig())
        roles[spec.role] = replace(over, options={"cpu_threads": threads, "threads": threads, **over.options})
    return replace(config, roles=roles)


class _Worker:
    """The Ray actor: one model hub per worker process, one file at a time."""

    def __init__(self, config: ModelsConfig, options: IndexOptions, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.hub = ModelHub(_with_threads(config, threads))
        self.options = options

    def extract(self, job: Job) -> Extraction:
        try:
            return extract(job, self.hub, self.options)
        except VideoQAError as exc:  # plain text travels back; the writer stops the run
            return Extraction(fatal=(type(exc).__name__,
                                     f"{exc} (on Ray worker {socket.gethostname()}, pid {os.getpid()})"))

    def describe(self) -> dict[str, Any]:
        import ray
        import torch

        return {"host": socket.gethostname(), "pid": os.getpid(), "gpus": [str(g) for g in ray.get_gpu_ids()],
                "torch_threads": torch.get_num_threads(),
                "whisper_threads": getattr(self.hub.transcriber, "cpu_threads", None),
                "models": self.hub.loaded()}


def plan_workers(resources: dict[str, float], device: str, options: RayOptions,
                 *, fixed: bool = False) -> tuple[int, float]:
    """(workers, GPUs per worker) for a cluster with ``resources`` (``ray.cluster_resources()``).

    GPU workers when the cluster has a GPU and ``device`` allows it (``options.gpus``
    overrides), one per GPU share that fits; else one per ``options.cpus`` CPUs. Workers
    that do not fit wait for an autoscaler, unless the cluster is ``fixed`` (a local Ray
    started for this run), where they could never start: an error.
    """
    cluster_cpus, cluster_gpus = float(resources.get("CPU", 0.0)), float(resources.get("GPU", 0.0))
    gpus = options.gpus
    if gpus is None:  # device cuda asks for GPU workers even before an autoscaler has added a GPU node
        gpus = 1.0 if device == "cuda" or (cluster_gpus >= 1 and device != "cpu") else 0.0
    if gpus == 0 and device == "cuda":
        raise ConfigError("device is cuda but ray_worker_gpus is 0; set device to auto or cpu, or give each "
                          "worker a GPU")
    if gpus < 0 or options.cpus <= 0:
        raise ConfigError(f"a Ray worker needs a positive number of CPUs and no negative GPUs (cpus {options.cpus:g}, "
                          f"gpus {gpus:g})")
    if gpus > 0 and device == "cpu":
        raise ConfigError("ray_worker_gpus is set but device is cpu; set device to auto or cuda")
    workers = options.workers
    if workers <= 0:
        fit = cluster_gpus // gpus if gpus > 0 else cluster_cpus // options.cpus
        if gpus > 0:
            fit = min(fit, cluster_cpus // options.cpus)
        workers = max(1, int(fit))
    if workers * gpus > cluster_gpus or workers * options.cpus > cluster_cpus:
        what = f"{workers} Ray workers of {options.cpus:g} CPU and {gpus:g} GPU"
        have = f"{cluster_cpus:g} CPU and {cluster_gpus:g} GPU"
        if fixed:
            raise ConfigError(f"{what} do not fit in the local Ray ({have}); lower ray_workers, ray_worker_cpus or "
                              "ray_worker_gpus")
        log.warning("%s do not fit in the cluster as it is (%s); those that do not fit wait for an autoscaler to "
                    "add nodes", what, have)
    return workers, gpus


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when a ``host:port`` Ray address does not answer (Ray itself retries for minutes)."""
    hostport = address.removeprefix("ray://").rstrip("/")
    if address == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise ConfigError(f"cannot reach Ray at {address}: {why} (is the cluster's head running, and is this its "
                          "GCS port, 6379, or its Ray Client port, 10001?)") from None


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("the ray executor needs Ray: pip install 'videoqa[cluster]' (or pip install ray)") from exc
    return ray


class RayExecutor:
    """Runs :func:`~indexer.pipeline.extract` on a pool of Ray actors.

    Uses the Ray of this process when it is already initialised; otherwise connects to
    ``options.address`` (or ``$RAY_ADDRESS``) or starts a local Ray, and shuts down on
    :meth:`close` what it started.
    """

    name = "ray"

    def __init__(self, config: ModelsConfig, index_options: IndexOptions, options: RayOptions = RayOptions()):
        ray = _ray()
        self.options = options
        self._started = False
        address = options.address or os.environ.get("RAY_ADDRESS") or None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
            if address:
                _check_reachable(address)
            else:  # a new local Ray, for this run only
                kwargs["include_dashboard"] = False
                if options.local_cpus:
                    kwargs["num_cpus"] = options.local_cpus
            try:
                ray.init(address=address or "local", **kwargs)
            except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
                where = address or "a new local Ray"
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ConfigError(f"cannot start or reach Ray at {where}: {first}") from exc
            self._started = True
        try:
            workers, gpus = plan_workers(ray.cluster_resources(), config.device, options,
                                         fixed=self._started and not address)
        except ConfigError:
            self.close()
            raise
        if config.device == "auto":  # a GPU worker uses its GPU; a CPU worker never one it did not reserve
            config = replace(config, device="cuda" if gpus > 0 else "cpu")
        self.gpus = gpus
        # Workers run in the environment their node was started with; what forbids downloads travels along.
        env = {k: os.environ[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if k in os.environ}
        # Ray replaces a worker that died (a crash in a native decoder, out of memory) and runs
        # the file it had once more on the new one; a worker dead more often stops the run.
        actor_class = ray.remote(_Worker).options(
            num_cpus=options.cpus, num_gpus=gpus, max_restarts=_MAX_RESTARTS, max_task_retries=1,
            runtime_env={"env_vars": env} if env else None)
        args = (config, index_options, max(1, int(options.cpus)))
        self._actors = [actor_class.remote(*args) for _ in range(workers)]
        self._starting: dict[Any, Any] = {}  # start-up reference -> actor, until the worker is up
        self._started_once: set[Any] = set()
        self._idle: list[Any] = []  # started workers without a file
        for actor in self._actors:
            self._wait_ready(actor)
        log.info("Ray executor: %d workers, %g CPU and %g GPU each", workers, options.cpus, gpus)

    @property
    def workers(self) -> int:
        return len(self._actors)

    def identify(self, candidates: Iterable[FoundFile]) -> Iterator[tuple[FoundFile, Identified]]:
        """Hash new files as small Ray tasks spread over the cluster, a window ahead, in order.

        The writer's machine then does not read every byte of the library itself; each
        file is read by a node of the cluster, as the extraction reads it. On a cluster of
        one node (a local Ray) that gains nothing and costs a worker process's start-up,
        so the files are hashed here, as by the local executor.
        """
        ray = _ray()
        on_cluster = self.options.hash_on_cluster
        if on_cluster is None:
            on_cluster = sum(1 for node in ray.nodes() if node.get("Alive")) > 1
        if not on_cluster:
            yield from identify_here(candidates)
            return
        task = ray.remote(identify_file).options(num_cpus=0, scheduling_strategy="SPREAD")
        window = max(8, 2 * len(self._actors))
        queue: deque[tuple[FoundFile, Any]] = deque()
        source = iter(candidates)
        exhausted = False
        try:
            while True:
                while not exhausted and len(queue) < window:
                    candidate = next(source, None)
                    if candidate is None:
                        exhausted = True
                    else:
                        queue.append((candidate, None if candidate.content_id else task.remote(candidate)))
                if not queue:
                    return
                candidate, ref = queue.popleft()
                if ref is None:
                    yield candidate, (candidate.content_id, None, 0.0)
                    continue
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    outcome = (None, f"hashing on Ray failed: {type(exc).__name__}", 0.0)
                yield candidate, outcome
        finally:
            for _, ref in queue:
                if ref is not None:
                    ray.cancel(ref)

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Extraction]]:
        """Extract ``jobs`` on the pool; yields each (job, extraction) as soon as it is done.

        Each started worker has one file at a time (a worker waiting for resources, say for
        an autoscaler to add a GPU node, gets none), so the file Ray retries after the
        worker died is alone on the restarted worker and no other file is blamed for it.
        ``in_flight - 1`` more files per worker are identified ahead, in this process, so a
        worker that frees up gets its next file at once.
        """
        ray = _ray()
        from ray.exceptions import OutOfMemoryError, RayActorError, WorkerCrashedError

        died = (RayActorError, WorkerCrashedError, OutOfMemoryError)
        source = iter(jobs)
        ahead: deque[Job] = deque()
        busy: dict[Any, tuple[Job, Any]] = {}  # object ref -> (job, actor)
        exhausted = False
        waited = 0.0

        def hand_out() -> None:
            nonlocal exhausted
            lookahead = (self.options.in_flight - 1) * len(self._actors)
            while True:
                while self._idle and ahead:
                    actor, job = self._idle.pop(), ahead.popleft()
                    busy[actor.extract.remote(job)] = (job, actor)
                if exhausted or (not self._idle and len(ahead) >= lookahead):
                    return
                job = next(source, None)  # identifies the next file (the writer's work)
                if job is None:
                    exhausted = True
                else:
                    ahead.append(job)

        try:
            while True:
                hand_out()
                if not busy and not ahead and exhausted:
                    return
                refs = list(busy) + list(self._starting)
                done, _ = ray.wait(refs, num_returns=1, timeout=None if busy else 30.0)
                if not done:  # no worker has started yet
                    waited += 30.0
                    log.warning("waiting for Ray workers to start (%.0f s so far; %d asked for, %g CPU and %g GPU "
                                "each): does the cluster have the resources?", waited, len(self._actors),
                                self.options.cpus, self.gpus)
                    continue
                ref = done[0]
                if ref in self._starting:
                    self._worker_started(ref)
                    continue
                job, actor = busy.pop(ref)
                try:
                    extraction = ray.get(ref)
                    self._idle.append(actor)
                except died as exc:  # Ray restarted the worker and tried the file once more: it died again
                    extraction = Extraction(failure=("extract", "the Ray worker extracting this file died twice "
                                                     f"({type(exc).__name__}); a crash in a decoder or out of "
                                                     "memory: see the Ray logs"))
                    self._wait_ready(actor)  # back to work once Ray has restarted it
                except ray.exceptions.RayError as exc:  # e.g. a result that could not be sent back
                    first = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
                    extraction = Extraction(failure=("extract", f"Ray failed on this file: {type(exc).__name__}: "
                                                     f"{first}"[:300]))
                    self._idle.append(actor)
                hand_out()  # the freed worker takes its next file before this one is written
                yield job, extraction
        finally:  # finished, or the writer stopped (interrupt, a missing model): drop what is running
            for ref, (_, actor) in busy.items():
                ray.cancel(ref, force=False)
                self._idle.append(actor)

    def _worker_started(self, ref: Any) -> None:
        """A worker's start-up (or restart) is over: it takes files from now on, or the run stops."""
        ray = _ray()
        actor = self._starting.pop(ref)
        try:
            ray.get(ref)
        except ray.exceptions.RayError as exc:
            if actor in self._started_once:  # out of restarts: max_restarts deaths already
                raise VideoQAError(f"Ray workers keep dying (one died {_MAX_RESTARTS + 1} times); see the Ray logs "
                                   "(out of memory? a node lost? a file that crashes a decoder?)") from None
            # e.g. videoqa or a library missing on a node: every worker fails
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise VideoQAError(f"a Ray worker could not start: {lines[-1] if lines else type(exc).__name__} (is "
                               "videoqa installed, at this version, on every node? see the Ray logs)") from None
        self._started_once.add(actor)
        self._idle.append(actor)

    def _wait_ready(self, actor: Any) -> None:
        self._starting[actor.__ray_ready__.remote()] = actor

    def worker_info(self) -> list[dict[str, Any]]:
        """Host, pid, GPUs, torch threads and loaded models of each worker."""
        ray = _ray()
        return ray.get([actor.describe.remote() for actor in self._actors if actor in self._started_once], timeout=60)

    def models_loaded(self) -> list[dict[str, Any]]:
        """The models loaded by the workers (each listed once, with how many workers hold it)."""
        try:
            infos = self.worker_info()
        except Exception as exc:  # the report goes on without it
            log.warning("could not ask the Ray workers which models they loaded: %s", exc)
            return []
        seen: dict[tuple[str, str, str], dict[str, Any]] = {}
        for info in infos:
            for model in info["models"]:
                key = (model["role"], model["backend"], model["model"])
                entry = seen.setdefault(key, {**model, "workers": 0})
                entry["workers"] += 1
        return list(seen.values())

    def close(self) -> None:
        ray = _ray()
        if not ray.is_initialized():
            return
        for actor in getattr(self, "_actors", []):
            ray.kill(actor, no_restart=True)
        self._actors = []
        if self._started:
            ray.shutdown()
