"""The ``videoqa`` command line: a thin layer over :class:`app.qa.VideoQA`.

Each subcommand takes as flags the settings that concern it (``app.settings.GROUPS``
says which), and any setting as ``--set NAME=VALUE``; ``videoqa settings`` lists them
all with their current values. What each subcommand does is in :mod:`app.commands`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from app.commands import COMMANDS
from app.settings import GROUPS, SETTINGS, Settings, load_settings
from models.errors import VideoQAError

__all__ = ["main", "build_parser", "settings_of"]

log = logging.getLogger("videoqa")

# Where --set items go in the namespace: those given before the subcommand and those after it,
# kept apart because argparse fills a subcommand's arguments into a fresh namespace and copies
# them over, so one list for both would lose the items given before the subcommand.
_SET_BEFORE, _SET_AFTER = "set_before", "set_after"


def _settings_parent(command: str | None) -> argparse.ArgumentParser:
    """The settings arguments of one subcommand (None: those accepted before the subcommand)."""
    parent = argparse.ArgumentParser(add_help=False)
    general = parent.add_argument_group("settings (also VIDEOQA_* environment variables and videoqa.toml)")
    general.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                         help="TOML file of settings (also VIDEOQA_CONFIG).")
    general.add_argument("--set", metavar="NAME=VALUE", action="append", default=argparse.SUPPRESS,
                         dest=_SET_AFTER if command else _SET_BEFORE,
                         help="Any setting, also one with no flag here (repeatable; see docs/SETTINGS.md).")
    flags = [s for s in SETTINGS if (command in s.commands if command else s.group == "general")]
    for group in GROUPS:  # in the order of docs/SETTINGS.md
        wanted = [s for s in flags if s.group == group]
        if not wanted:
            continue
        args = general if group == "general" else parent.add_argument_group(f"{group} settings")
        for s in wanted:
            kwargs: dict[str, Any] = {"dest": s.name, "default": argparse.SUPPRESS, "help": s.help}
            if s.choices:
                kwargs["choices"] = s.choices
            if s.type is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["metavar"] = s.name.split("_")[-1].upper()
            args.add_argument(s.flag, **kwargs)
    parent.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="More logging (-vv: debug).")
    return parent


def _json_flag(p: argparse.ArgumentParser, what: str = "Print JSON.") -> None:
    p.add_argument("--json", action="store_true", help=what)


def _index_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="Video files or folders.")
    p.add_argument("--force", action="store_true", help="Index again files whose content is already indexed.")
    p.add_argument("--repair", action="store_true",
                   help="Rebuild the keyword and vector indexes from the catalog (with no PATH: only that).")
    p.add_argument("--reembed", action="store_true",
                   help="Make the text vectors again from the stored text with the text embedder the settings "
                        "name, after a change of text_embedder; no video is read again (with no PATH: only that).")
    p.add_argument("--no-progress", action="store_true", help="No progress bars.")
    _json_flag(p, "Print the report as JSON.")


def _search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", nargs="?", help="The question (or use --queries).")
    p.add_argument("--queries", metavar="FILE", help="One question per line ('-': standard input). With --json, "
                   "one object per line out, in order (a blank line gives no hits); the text output skips blank "
                   "lines.")
    _json_flag(p)


def _ask_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("question")
    _json_flag(p)


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("questions", type=Path, metavar="QUESTIONS.jsonl",
                   help="One question per line (see docs/EVALUATION.md).")
    p.add_argument("--answers", action="store_true", help="Also ask each question and score the answers.")
    p.add_argument("--split", choices=("tune", "test"), help="Only the questions of this split (their \"split\" "
                   "field): choose settings on tune, report on test.")
    _json_flag(p)


# Each subcommand: its help line and its own arguments (its settings flags come from app.settings).
_SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "index": ("Index video files and folders (recursive, incremental).", _index_args),
    "search": ("Find the videos and moments that match a question.", _search_args),
    "ask": ("Answer a question, citing the video and the moment.", _ask_args),
    "eval": ("Measure retrieval (and answers) on questions with known answers.", _eval_args),
    "library": ("List the indexed videos and the files that failed.", _json_flag),
    "models": ("Show every model role: backend, model, where found.", _json_flag),
    "serve": ("Serve the web UI (binds 127.0.0.1 unless --host).", lambda p: None),
    "settings": ("Show every setting, its value and where it came from.", _json_flag),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videoqa", parents=[_settings_parent(None)],
        description="Ask questions about a library of videos; answers cite the video and the moment.",
        epilog="Each command has its own settings flags (videoqa COMMAND --help); --set NAME=VALUE sets any.",
    )
    parser.add_argument("--version", action="version", version=f"videoqa {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments) in _SUBCOMMANDS.items():
        p = sub.add_parser(name, parents=[_settings_parent(name)], help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(func=COMMANDS[name])
    return parser


def _unrecognized(command: str, extra: Sequence[str]) -> str:
    """argparse's message for arguments it does not know, naming --set for a setting that is
    not a flag of this subcommand."""
    message = f"unrecognized arguments: {' '.join(extra)}"
    by_flag = {s.flag: s for s in SETTINGS} | {f"--no-{s.flag[2:]}": s for s in SETTINGS if s.type is bool}
    setting = next((by_flag[a.split("=")[0]] for a in extra if a.split("=")[0] in by_flag), None)
    if setting is not None:
        message += (f" ({setting.flag} is not a flag of {command}, which does not use it; "
                    f"--set {setting.name}=VALUE gives it anyway)")
    return message


def settings_of(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """The settings the parsed command line gives (flags and --set over environment and file)."""
    flags = {s.name: getattr(args, s.name) for s in SETTINGS if hasattr(args, s.name)}
    sets = [*getattr(args, _SET_BEFORE, ()), *getattr(args, _SET_AFTER, ())]
    return load_settings(flags, config=getattr(args, "config", None), env=env, sets=sets)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("videoqa")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _setup_logging(settings: Settings, verbose: int) -> None:
    level = getattr(logging, settings.log_level.upper())
    if verbose:
        level = logging.DEBUG if verbose > 1 else min(level, logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if level > logging.DEBUG:
        for noisy in ("faster_whisper", "faiss", "sentence_transformers", "httpx", "urllib3", "transformers"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # OpenCV's own FFmpeg prints decoder complaints ("Invalid NAL unit size") about damaged
    # files to stderr; the indexer reports such a file in one line of its own.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_libraries()
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show a character gets an escape, not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.error(_unrecognized(args.command, extra))
    try:
        settings = settings_of(args)
        _setup_logging(settings, getattr(args, "verbose", 0))
        from app.qa import VideoQA

        return args.func(VideoQA(settings), args, settings, sys.stdout)
    except VideoQAError as exc:
        print(f"videoqa: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("videoqa: interrupted; what was indexed so far is kept", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
