"""The command line: each subcommand's own flags, --set NAME=VALUE, and the documented commands.

Nothing here loads a model: the commands are parsed, and the errors come before any model is built.
"""

import re
import shlex
from pathlib import Path

import pytest

from app.cli import build_parser, main, settings_of
from app.commands import COMMANDS
from app.qa import models_config
from app.settings import GROUPS, SETTINGS, SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[2]


def _subparser(name: str):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001 - argparse has no public lookup
    return sub.choices[name]


def _flags(name: str) -> set[str]:
    return {o for a in _subparser(name)._actions for o in a.option_strings}  # noqa: SLF001


def _settings(*argv: str):
    return settings_of(build_parser().parse_args(list(argv)), env={})


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No VIDEOQA_* setting from the environment, and an empty index directory."""
    import os

    for key in [k for k in os.environ if k.startswith("VIDEOQA_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("VIDEOQA_INDEX_DIR", str(tmp_path / "index"))


def test_index_help_lists_indexing_flags_but_no_answering_search_or_web_flags():
    text = _subparser("index").format_help()
    for flag in ("--whisper-model", "--beam-size", "--screen-text", "--describe-window", "--executor",
                 "--keyword-engine", "--index-dir", "--set"):
        assert flag in text, flag
    for flag in ("--answer-threshold", "--answerer", "--reranker", "--not-found-when-declined", "--top-k",
                 "--keyword-weight", "--port", "--host", "--auth"):
        assert flag not in text, flag


@pytest.mark.parametrize("command, has, lacks", [
    ("search", ["--top-k", "--keyword-weight", "--text-embedder", "--vector-nprobe"],
     ["--beam-size", "--answer-threshold", "--port", "--executor"]),
    ("ask", ["--answer-threshold", "--answerer", "--reranker", "--top-k"], ["--beam-size", "--executor", "--port"]),
    ("serve", ["--port", "--host", "--auth", "--answer-threshold", "--whisper-model"], ["--executor", "--ray-address"]),
    ("models", ["--answerer", "--whisper-model", "--describer-path", "--profile"], ["--beam-size", "--top-k"]),
    ("library", ["--index-dir", "--json"], ["--whisper-model", "--top-k"]),
    ("settings", [s.flag for s in SETTINGS], []),
])
def test_each_subcommand_has_its_own_flags(command, has, lacks):
    flags = _flags(command)
    assert set(has) <= flags and not set(lacks) & flags
    # exactly the settings that the one table (app.settings.GROUPS) gives it
    assert {s.flag for s in SETTINGS} & flags == {s.flag for s in SETTINGS if command in s.commands}


def test_every_subcommand_is_dispatched_by_its_function():
    assert tuple(COMMANDS) == SUBCOMMANDS and set(GROUPS["general"]) == set(SUBCOMMANDS)
    for name in SUBCOMMANDS:
        assert _subparser(name).get_default("func") is COMMANDS[name]


def test_set_gives_a_setting_that_has_no_flag_on_the_subcommand(tmp_path):
    """As docs/SETTINGS.md shows it: ``videoqa search QUESTION --set describer_path=DIR``."""
    assert "--describer-path" not in _flags("search")
    s = _settings("search", "what flows down the volcano", "--set", f"describer_path={tmp_path}")
    assert s.describer_path == str(tmp_path) and s.sources["describer_path"] == "--set"
    assert models_config(s, "full").roles["describer"].path == str(tmp_path)  # what profile auto looks at


def test_set_reads_values_like_the_environment_and_equals_the_flag():
    by_set = _settings("ask", "q", "--set", "answer_threshold=0.3")
    by_flag = _settings("ask", "q", "--answer-threshold", "0.3")
    assert by_set.answer_threshold == by_flag.answer_threshold == 0.3
    s = _settings("index", "--set", "screen_text=no", "--set", "top_k=7", "--set", "ray-workers=2")
    assert (s.screen_text, s.top_k, s.ray_workers) == (False, 7, 2)
    assert _settings("--set", "top_k=4", "search", "q", "--set", "top_k=5").top_k == 5  # the last one wins
    assert _settings("--set", "top_k=4", "--index-dir", "/tmp/i", "search", "q").top_k == 4  # before the subcommand


def test_set_beats_the_environment_and_the_file(tmp_path):
    config = tmp_path / "videoqa.toml"
    config.write_text("top_k = 9\n")
    args = build_parser().parse_args(["search", "q", "--config", str(config), "--set", "top_k=2"])
    s = settings_of(args, env={"VIDEOQA_TOP_K": "8"})
    assert s.top_k == 2 and s.sources["top_k"] == "--set"


@pytest.mark.parametrize("argv, message", [
    (["search", "q", "--set", "top_kk=3"], "--set top_kk: unknown setting 'top_kk'; did you mean top_k?"),
    (["search", "q", "--set", "top_k=three"], "--set top_k: top_k must be int, got 'three'"),
    (["ask", "q", "--set", "fusion=max"], "--set fusion: invalid fusion 'max', expected one of: sum, rrf"),
    (["library", "--set", "top_k"], "--set 'top_k': expected NAME=VALUE (e.g. --set top_k=5)"),
    (["search", "q", "--top-k", "3", "--set", "top_k=4"], "--set top_k: --top-k sets top_k too; give it once"),
])
def test_a_bad_set_is_a_one_line_error_naming_the_setting(clean_env, capsys, argv, message):
    assert main(argv) != 0
    out, err = capsys.readouterr()
    assert out == "" and err == f"videoqa: error: {message}\n"


def test_a_flag_of_another_subcommand_names_set(clean_env, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["index", "videos", "--answer-threshold", "0.3"])
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--answer-threshold is not a flag of index" in last and "--set answer_threshold=VALUE" in last


def test_set_works_end_to_end(clean_env, capsys, tmp_path):
    assert main(["library", "--set", f"index_dir={tmp_path / 'other'}", "--set", "port=8001"]) == 0
    assert capsys.readouterr().out == f"0 videos indexed, 0 failed, in {tmp_path / 'other'}\n"


# -- every command the documentation shows still parses ----------------------------------------

def _documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every videoqa command in the README's and docs' shell blocks, the Makefile,
    docker-compose.yml and the RayJob."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        fence = None  # the language of the fenced block we are in
        for line in path.read_text().splitlines():
            if line.startswith("```"):
                fence = None if fence is not None else line[3:].strip()
            elif fence in ("sh", "bash", "console"):
                found.append((path.name, line))
    found += [("Makefile", line.replace("$(BIN)/", "").replace("$(", "").replace(")", "").lstrip("\t-"))
              for line in (ROOT / "Makefile").read_text().splitlines()]
    compose = (ROOT / "docker-compose.yml").read_text()
    found += [("docker-compose.yml", " ".join(shlex.split(c.replace(",", " "))))
              for c in re.findall(r'command: \[(.*?)\]', compose)]
    found += [("rayjob.yaml", line.split("entrypoint:", 1)[1])
              for line in (ROOT / "deploy/kuberay/rayjob.yaml").read_text().splitlines() if "entrypoint:" in line]
    commands = []
    for where, line in found:
        line = re.split(r"(?:^|\s)#", line)[0]  # a comment may hold an apostrophe
        if "videoqa " not in line:
            continue
        words = shlex.split(line.replace("[", "").replace("]", ""))
        words = [w for w in words if "=" not in w or w.startswith("-")] if words and "=" in words[0] else words
        for i, word in enumerate(words):
            if Path(word).name == "videoqa" and i + 1 < len(words) and words[i + 1] in SUBCOMMANDS:
                commands.append((where, words[i + 1:]))
                break
    return commands


DOCUMENTED = _documented_commands()


def test_the_documentation_shows_commands():
    wheres = {w for w, _ in DOCUMENTED}
    assert {"README.md", "DEPLOY.md", "EVALUATION.md", "Makefile", "docker-compose.yml", "rayjob.yaml"} <= wheres
    assert len(DOCUMENTED) >= 20


@pytest.mark.parametrize("where, argv", DOCUMENTED, ids=[f"{w}: {' '.join(a)}" for w, a in DOCUMENTED])
def test_each_documented_command_parses(where, argv, capsys):
    if "--help" in argv:
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args(argv)
        assert done.value.code == 0 and f"usage: videoqa {argv[0]}" in capsys.readouterr().out
        return
    args = build_parser().parse_args(argv)
    assert args.func is COMMANDS[argv[0]]


def test_flags_named_inline_in_the_docs_belong_to_their_subcommand():
    """`videoqa ask --json`, `videoqa index --repair --index-dir D`: shown in prose, not run."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for span in re.findall(r"`videoqa ([a-z]+)([^`]*)`", path.read_text()):
            command, rest = span
            if command not in SUBCOMMANDS:
                continue
            flags = {w.split("=")[0] for w in rest.split() if w.startswith("--")}
            assert flags <= _flags(command), (path.name, command, flags - _flags(command))


def test_ask_prints_what_a_written_answers_citation_says():
    """Under each citation of a written answer, in quotes, the words of the cited moment; the
    closest moments of a question not found get theirs too; an extractive answer is not repeated."""
    import io

    from app.answering import Answer, AnswerEvent, Citation
    from app.commands import _print_answer

    cite = Citation("/v/solar.mp4", "solar.mp4", 8.0, 12.4, "Jupiter is the largest planet.")

    def printed(answer: Answer) -> list[str]:
        out = io.StringIO()
        _print_answer([AnswerEvent("final", answer=answer)], out)
        return out.getvalue().splitlines()

    written = printed(Answer("which planet is the largest?", "Jupiter.", [cite], []))
    assert written == ["Jupiter.", "  — solar.mp4 @ 00:08–00:13", "    “Jupiter is the largest planet.”",
                       "    /v/solar.mp4"]
    said = printed(Answer("which planet is the largest?", cite.text, [cite], []))
    assert "“" not in "\n".join(said)
    closest = printed(Answer("how many moons has Jupiter?", "Nothing in the library answers this question.", [], [],
                             closest=[cite]))
    assert "    “Jupiter is the largest planet.”" in closest
