import pytest

from app.settings import SETTINGS, load_settings
from models.errors import ConfigError


def test_every_setting_has_help_and_an_env_name():
    for s in SETTINGS:
        assert s.help.strip() and s.env.startswith("VIDEOQA_")


def test_precedence_defaults_toml_env_cli(tmp_path):
    toml = tmp_path / "videoqa.toml"
    toml.write_text('top_k = 5\nport = 9000\nkeyword_weight = 0.5\nindex_dir = "idx"\n')
    env = {"VIDEOQA_PORT": "9100", "VIDEOQA_KEYWORD_WEIGHT": "0.7"}
    s = load_settings({"keyword_weight": 0.9}, config=toml, env=env)
    assert s.fusion == "sum" and s.sources["fusion"] == "default"
    assert s.top_k == 5 and s.sources["top_k"] == str(toml)
    assert s.port == 9100 and s.sources["port"] == "VIDEOQA_PORT"
    assert s.keyword_weight == 0.9 and s.sources["keyword_weight"] == "--keyword-weight"
    assert s.index_dir == str(tmp_path / "idx")  # relative to the file


def test_config_path_from_environment(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("[videoqa]\nprofile = 'packaged'\n")
    assert load_settings(env={"VIDEOQA_CONFIG": str(toml)}).profile == "packaged"


@pytest.mark.parametrize("cli, env, text, match", [
    ({}, {"VIDEOQA_TOP_K": "three"}, None, "VIDEOQA_TOP_K.*int"),
    ({}, {"VIDEOQA_PROFILE": "gpu"}, None, "expected one of: packaged, full, auto"),
    ({}, {}, "top_kk = 3\n", "did you mean top_k"),
    ({}, {}, "top_k = [\n", "not valid TOML"),
])
def test_bad_settings_are_clear_errors(tmp_path, cli, env, text, match):
    config = None
    if text is not None:
        config = tmp_path / "bad.toml"
        config.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_settings(cli, config=config, env=env)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(config=tmp_path / "nope.toml", env={})


def test_docs_list_every_setting():
    from pathlib import Path

    from app.settings_doc import settings_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "SETTINGS.md"
    assert doc.read_text() == settings_markdown(), "regenerate docs/SETTINGS.md: app.settings_doc.settings_markdown()"
