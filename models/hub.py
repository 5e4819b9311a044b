"""One place that builds each model once and shares it (indexer, retriever, UI).

:class:`ModelsConfig` is plain data (the app layer fills it from settings);
:class:`ModelHub` builds backends lazily from it. :func:`report` says, for every role
of every profile, which backend and model it is and where the weights were found.

Each role is an attribute typed by its Protocol: ``hub.transcriber`` is a
:class:`~models.types.Transcriber` or None when the profile turns the role off, and
``hub.required.transcriber`` is one or a :class:`ConfigError` naming the profile.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from models.base import default_cache_dir
from models.errors import ConfigError, VideoQAError
from models.registry import ROLES, Choice, RoleSpec, backend_class, backends, default_model, role_spec
from models.types import (Answerer, Describer, FrameEmbedder, Model, Reranker, TextEmbedder, TextReader,
                          Transcriber, VoiceDetector)

__all__ = ["RoleConfig", "ModelsConfig", "ModelHub", "report", "resolve_profile", "PROFILES"]

PROFILES = ("packaged", "full", "auto")


@dataclass
class RoleConfig:
    """Overrides for one role: backend, model name, local path, backend options."""

    backend: str | None = None
    model: str | None = None
    path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelsConfig:
    profile: str = "packaged"  # packaged | full (auto is resolved before building a hub)
    device: str = "auto"
    cache_dir: Path = field(default_factory=default_cache_dir)
    roles: dict[str, RoleConfig] = field(default_factory=dict)

    def choice(self, spec: RoleSpec, profile: str | None = None) -> tuple[str, str, RoleConfig] | None:
        """(backend, model, overrides) of a role in a profile, or None when the role is off."""
        profile = profile or self.profile
        base: Choice | None = spec.full if profile == "full" else spec.packaged
        over = self.roles.get(spec.role, RoleConfig())
        if (base is None and not over.backend) or (over.backend and over.backend == spec.off_name):
            return None
        backend = over.backend or base.backend  # type: ignore[union-attr]
        if over.model:
            model = over.model
        elif shared := self._packaged_model_of(spec, profile, backend):
            model = shared  # answerer_model alone picks the packaged reranker's model too
        elif base is not None and backend == base.backend:
            model = base.model  # the profile's choice (full: Whisper small; packaged: base)
        elif backend in backends(spec.role):
            model = default_model(spec.role, backend)  # the backend's own default
        else:
            model = ""  # an unknown backend: building it fails listing the valid ones
        return backend, model, over

    def _packaged_model_of(self, spec: RoleSpec, profile: str, backend: str) -> str | None:
        """The model named for ``spec.packaged_model_of`` when this role shares it (see RoleSpec)."""
        if profile == "full" or not spec.packaged_model_of or spec.packaged is None:
            return None
        other = role_spec(spec.packaged_model_of)
        over = self.roles.get(other.role, RoleConfig())
        if backend != spec.packaged.backend or other.packaged is None:
            return None
        return over.model if over.model and (over.backend or other.packaged.backend) == other.packaged.backend \
            else None


def _accepted(cls: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The options a backend's constructor takes.

    The app offers every backend of a role the same settings (batch sizes, token caps,
    dtype); each takes the ones it has.
    """
    import inspect

    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD and n != "kw" for n, p in params.items()):
        return dict(options)
    names = set(params)
    for base in cls.__mro__[1:]:
        if "__init__" in base.__dict__:
            names |= set(inspect.signature(base.__init__).parameters)
    return {k: v for k, v in options.items() if k in names}


def _build(config: ModelsConfig, spec: RoleSpec, profile: str | None = None) -> Any | None:
    chosen = config.choice(spec, profile)
    if chosen is None:
        return None
    backend, model, over = chosen
    cls = backend_class(spec.role, backend)
    return cls(model=model or None, path=over.path, device=config.device, cache_dir=config.cache_dir,
               **_accepted(cls, over.options))


def _locate_all(config: ModelsConfig, profile: str) -> list[str]:
    """The problems that keep a profile from running; empty when every role is found."""
    problems = []
    for spec in ROLES:
        chosen = config.choice(spec, profile)
        if chosen is None:
            continue
        backend = chosen[0]
        if backend not in backends(spec.role):
            problems.append(f"{spec.role}: backend {backend!r} is not available in this version")
            continue
        try:
            _build(config, spec, profile).locate()
        except VideoQAError as exc:
            problems.append(str(exc))
    return problems


def resolve_profile(config: ModelsConfig, requested: str) -> tuple[str, str]:
    """Turn ``auto`` into ``full`` or ``packaged``; returns (profile, why)."""
    if requested not in PROFILES:
        raise ConfigError(f"invalid profile {requested!r}, expected one of: {', '.join(PROFILES)}")
    if requested != "auto":
        return requested, "as configured"
    problems = _locate_all(config, "full")
    if not problems:
        return "full", "auto: every full-profile model was found locally"
    missing = ", ".join(p.split(":", 1)[0] for p in problems)
    return "packaged", f"auto: full-profile models missing ({missing}); see videoqa models"


R = TypeVar("R", bound=Model)


class _Role(Generic[R]):
    """A role as an attribute typed by its Protocol: the backend (or None when the profile turns
    the role off) on a :class:`ModelHub`, the backend or a ConfigError on its ``required`` view."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name  # the attribute is named after the role

    @overload
    def __get__(self, obj: None, owner: type) -> _Role[R]: ...
    @overload
    def __get__(self, obj: _Required, owner: type) -> R: ...
    @overload
    def __get__(self, obj: _Roles, owner: type) -> R | None: ...

    def __get__(self, obj: _Roles | None, owner: type) -> Any:
        return self if obj is None else obj._model(self.name)


class _Roles:
    """One attribute per role of models.registry.ROLES, typed by the role's Protocol."""

    voice_activity = _Role[VoiceDetector]()
    transcriber = _Role[Transcriber]()
    text_reader = _Role[TextReader]()
    frame_embedder = _Role[FrameEmbedder]()
    describer = _Role[Describer]()
    answerer = _Role[Answerer]()
    text_embedder = _Role[TextEmbedder]()
    reranker = _Role[Reranker]()

    def _model(self, role: str) -> Model | None:
        raise NotImplementedError


class _Required(_Roles):
    """``hub.required.<role>``: the backend, or a ConfigError when the profile has none."""

    def __init__(self, hub: ModelHub):
        self._hub = hub

    def _model(self, role: str) -> Model:
        return self._hub.require(role)


class ModelHub(_Roles):
    """Builds each role's backend once, on first use, and hands the same instance to everyone.

    ``hub.<role>`` is the role's backend, typed by its Protocol, or None when the profile turns
    the role off; ``hub.required.<role>`` raises a ConfigError instead of giving None.
    """

    def __init__(self, config: ModelsConfig):
        if config.profile not in ("packaged", "full"):
            raise ConfigError(f"ModelHub needs a resolved profile, not {config.profile!r}")
        self.config = config
        self._instances: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._specs = {s.role: s for s in ROLES}

    @property
    def profile(self) -> str:
        return self.config.profile

    def enabled(self, role: str) -> bool:
        return self.config.choice(self._specs[role]) is not None

    @property
    def required(self) -> _Required:
        """The roles again, each raising a ConfigError naming the profile when it has none."""
        return _Required(self)

    def _model(self, role: str) -> Model | None:
        return self.get(role)

    def get(self, role: str) -> Model | None:
        """The backend of ``role`` named at run time (not yet loaded), or None when the profile
        turns the role off. A role known when writing the code reads better as ``hub.<role>``."""
        with self._lock:
            if role not in self._instances:
                self._instances[role] = _build(self.config, self._specs[role])
            return self._instances[role]

    def require(self, role: str) -> Model:
        """:meth:`get`, raising a ConfigError when the profile has no model for ``role``."""
        model = self.get(role)
        if model is None:
            raise ConfigError(f"the {self.profile} profile has no {role} model")
        return model

    def loaded(self) -> list[dict[str, Any]]:
        """Summaries of the models loaded so far."""
        with self._lock:
            return [m.info() for m in self._instances.values() if m is not None and m.loaded]


def report(config: ModelsConfig) -> list[dict[str, Any]]:
    """For every role of DESIGN.md section 3, in both profiles: backend, model, where found or why missing."""
    rows = []
    for spec in ROLES:
        for profile in ("packaged", "full"):
            row: dict[str, Any] = {"role": spec.role, "title": spec.title, "profile": profile}
            chosen = config.choice(spec, profile)
            if chosen is None:
                by_setting = bool(spec.off_name) and config.roles.get(spec.role, RoleConfig()).backend == spec.off_name
                where = f"{spec.role} = {spec.off_name}" if by_setting else "the packaged profile"
                row.update(backend=None, model=None, found=False, off=True,
                           reason=f"off ({where}): {spec.packaged_fallback}")
                rows.append(row)
                continue
            backend, model, over = chosen
            row.update(backend=backend, model=model or None, off=False)
            try:
                backend_class(spec.role, backend)
            except VideoQAError:
                hf = spec.full.hf_repo if profile == "full" else None
                row.update(found=False, reason=f"backend {backend!r} is not available in this version of videoqa"
                           + (f"; weights: huggingface-cli download {hf}" if hf else ""))
                rows.append(row)
                continue
            try:
                built = _build(config, spec, profile)
                loc = built.locate()
                row.update(found=True, path=str(loc.path), source=loc.source)
                helpers = getattr(built, "helpers", None)  # models a backend loads for part of its work
                if helpers:
                    row["helpers"] = helpers()
            except VideoQAError as exc:
                row.update(found=False, reason=str(exc))
            rows.append(row)
    return rows
