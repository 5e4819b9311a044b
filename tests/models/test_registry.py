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
    transcriber = hub.get("transcriber")
    assert transcriber is hub.get("transcriber")  # built once, shared
    assert not transcriber.loaded
    assert hub.loaded() == []
    assert hub.get("describer") is None  # off in the packaged profile
    with pytest.raises(ConfigError):
        hub.require("reranker")


def test_hub_rejects_unresolved_profile(tmp_path):
    with pytest.raises(ConfigError):
        ModelHub(ModelsConfig(profile="auto", cache_dir=tmp_path))


def test_report_covers_both_profiles_and_finds_packaged_models(tmp_path):
    rows = report(ModelsConfig(profile="packaged", cache_dir=tmp_path))
    assert {(r["role"], r["profile"]) for r in rows} == {(r, p) for r in DESIGN_ROLES for p in ("packaged", "full")}
    packaged = {r["role"]: r for r in rows if r["profile"] == "packaged"}
    for role in ("voice_activity", "transcriber", "text_reader", "text_embedder"):
        assert packaged[role]["found"], packaged[role]
        assert packaged[role]["source"].startswith("packaged wheel")
    for role in ("frame_embedder", "describer", "answerer", "reranker"):
        assert packaged[role]["off"]


def test_override_model_and_missing_path_is_a_clear_error(tmp_path):
    config = ModelsConfig(profile="packaged", cache_dir=tmp_path,
                          roles={"transcriber": RoleConfig(path=str(tmp_path / "nowhere"))})
    rows = {(r["role"], r["profile"]): r for r in report(config)}
    row = rows[("transcriber", "packaged")]
    assert not row["found"]
    assert "nowhere" in row["reason"] and "does not exist" in row["reason"]
