"""What each ``videoqa`` subcommand does, and how it prints: one function per command.

:mod:`app.cli` parses the command line and calls the command's function (``COMMANDS``) with
the :class:`~app.qa.VideoQA` of the resolved settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TextIO

from app.settings import Settings
from indexer.schema import format_time
from models.errors import VideoQAError

if TYPE_CHECKING:  # the facade imports every layer; the parser (and --help) need none of it
    from app.qa import VideoQA

__all__ = ["COMMANDS", "Command"]

Command = Callable[["VideoQA", argparse.Namespace, Settings, TextIO], int]
"""A subcommand: (the facade, the parsed arguments, the settings, standard output) -> exit status."""


# -- output ------------------------------------------------------------------------------

def _columns(text: str) -> int:
    """Terminal columns ``text`` takes: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _print_report(report: Any, out: TextIO) -> None:
    rows = report.results
    width = max([_columns(Path(r.path).name) for r in rows] + [4])
    if rows:
        out.write(f"{'file':<{width}}  {'status':<8} {'length':>7} {'moments':>7} {'frames':>6}  note\n")
    for r in rows:
        note = r.reason if r.status != "indexed" else (r.language or "no speech")
        if r.status == "failed" and r.stage:
            note = f"[{r.stage}] {note}"
        name = Path(r.path).name
        out.write(f"{name}{' ' * (width - _columns(name))}  {r.status:<8} {format_time(r.duration):>7} "
                  f"{r.moments:>7} {r.keyframes:>6}  {note}\n")
    out.write(f"\n{report.count('indexed')} indexed, {report.count('skipped')} skipped, "
              f"{report.count('failed')} failed in {report.elapsed:.1f} s")
    if report.repaired:
        out.write("; keyword and vector indexes rebuilt from the catalog")
    out.write("\n")
    if rows and report.count("skipped") == len(rows) and not report.models_loaded:
        out.write("Nothing changed: no model was loaded.\n")


def _shown(text: str, limit: int = 80) -> str:
    """``text`` safe to print on a terminal: control and invisible format characters escaped
    (a NUL, an escape sequence or a right-to-left override would garble the screen), and at
    most ``limit`` characters."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    if len(shown) > limit:
        shown = f"{shown[:limit - 1]}… ({len(text)} characters)"
    return shown


def _print_hits(query: str, hits: Sequence[Any], out: TextIO) -> None:
    if not hits:
        out.write(f"No video matches '{_shown(query)}'.\n")
        return
    for rank, hit in enumerate(hits, 1):
        channels = ", ".join(f"{k} {v:.2f}" for k, v in hit.channels.items())
        out.write(f"{rank}. {hit.name}  score {hit.score:.3f} ({channels})\n   {hit.video}\n")
        for m in hit.moments:
            text = m.text if len(m.text) <= 110 else m.text[:107] + "..."
            out.write(f"   {m.cite()}  [{m.kind} {m.score:.2f}] {text}\n")


def _print_models(info: dict[str, Any], out: TextIO) -> None:
    out.write(f"profile: {info['profile']} (requested {info['requested']}; {info['why']})\n\n")
    for row in info["roles"]:
        mark = "*" if row["profile"] == info["profile"] else " "
        head = f"{mark} {row['role']:<15} {row['profile']:<9}"
        if row.get("off"):
            out.write(f"{head} off: {row['reason'].split(': ', 1)[-1]}\n")
        elif row["found"]:
            out.write(f"{head} {row['backend']} {row['model']}\n{'':27} found: {row['source']} ({row['path']})\n")
            for helper in row.get("helpers", ()):
                out.write(f"{'':27} {helper}\n")
        else:
            out.write(f"{head} {row['backend']} {row['model']}\n{'':27} missing: {row['reason']}\n")
    out.write("\n* = the active profile\n")


def _print_answer(events: Any, out: TextIO) -> None:
    """Each video's answer as it is written, one line per video, then the answer that won."""
    from app.answering import quotes
    answer, open_line = None, False
    for event in events:
        if event.kind == "candidate":
            out.write(f"{chr(10) if open_line else ''}{Path(event.video).name}: ")
            open_line = True
        elif event.kind == "token":
            out.write(event.text)
            out.flush()
        elif event.kind == "final":
            answer = event.answer
    if open_line:
        out.write("\n\n")
    if answer is None:  # pragma: no cover - answer_events ends with a final event
        return
    out.write(answer.answer + "\n")
    for c in answer.citations or answer.closest:
        out.write(f"  — {c.label()}\n")
        for said in quotes([c], answer.answer):
            out.write(f"    “{said}”\n")
        out.write(f"    {c.video}\n")
    if len(answer.candidates) > 1:
        judge = "reranker" if answer.method.endswith("rerank") else "retrieval"
        out.write(f"\ncandidates ({judge} score; {answer.method}):\n")
        for c in answer.candidates:
            text = c.answer if len(c.answer) <= 90 else c.answer[:87] + "..."
            out.write(f"  {c.score:.3f}  {c.name} [{c.method}]: {text}\n")


def _read_queries(name: str) -> list[str]:
    """The lines of a file (or standard input), blank ones included; bytes that are not UTF-8
    become U+FFFD, a byte-order mark is dropped."""
    try:
        if name == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(name, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        raise VideoQAError(f"{name}: cannot read the queries file ({exc.strerror or exc})") from None
    # Only \n, \r\n and \r end a line (str.splitlines would also split at form feeds, U+2028...).
    lines = data.decode("utf-8-sig", errors="replace").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _json_line(obj: Any) -> str:
    """One line of JSON; characters that some readers take for a line break (U+2028, U+2029,
    U+0085) are escaped too, so every object stays on its own line."""
    line = json.dumps(obj, ensure_ascii=False)
    return line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085") + "\n"


def _arg_text(text: str) -> str:
    """A command-line argument as text: bytes that were not UTF-8 (kept by Python as lone
    surrogates, which cannot be printed or written as JSON) become U+FFFD."""
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


def _question(text: str) -> str:
    from retriever import clean_query

    text = _arg_text(text)
    if not clean_query(text):
        raise VideoQAError("the question is empty: give some words to search for")
    return text


# -- commands ----------------------------------------------------------------------------

def show_settings(qa: VideoQA, args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    table = settings.table()
    if args.json:
        out.write(json.dumps(table, indent=2) + "\n")
    else:
        for row in table:
            out.write(f"{row['name']:<22} {row['value']!s:<30} ({row['source']})\n    {row['help']}\n")
    return 0


def eval_questions(qa: VideoQA, args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from app.evaluation import evaluate, format_report, load_questions

    report = evaluate(qa, load_questions(args.questions, args.split), answers=args.answers)
    if args.json:
        out.write(json.dumps({k: report[k] for k in ("overall", "by_category", "by_channel",
                                                     "by_category_channel")}) + "\n")
    else:
        out.write(format_report(report))
    return 0


def library(qa: VideoQA, args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = qa.library()
    if args.json:
        out.write(json.dumps(lib, indent=2, default=str) + "\n")
        return 0
    videos, failures = lib["videos"], lib["failures"]
    width = max([len(v["name"]) for v in videos] + [4])
    for v in videos:
        out.write(f"{v['name']:<{width}}  {format_time(v['duration']):>7}  {v['language'] or '-':<3} "
                  f"{v['width']}x{v['height']}  {v['path']}\n")
    for f in failures:
        out.write(f"FAILED {f['path']}: [{f['stage']}] {f['error']}\n")
    out.write(f"{len(videos)} videos indexed, {len(failures)} failed, in {qa.index_dir}\n")
    return 0


def models(qa: VideoQA, args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    info = qa.models()
    if args.json:
        out.write(json.dumps(info, indent=2) + "\n")
    else:
        _print_models(info, out)
    return 0


def index(qa: VideoQA, args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if not args.paths and not args.repair and not args.reembed:
        raise VideoQAError("give at least one video file or folder to index (or --repair, --reembed)")
    progress = not args.no_progress and not args.json and sys.stderr.isatty()
    if args.reembed:
        done = qa.reembed(progress=progress, force=args.force)
        if args.json and not args.paths:
            out.write(_json_line({"index_dir": str(qa.index_dir), "reembed": asdict(done)}))
        elif not args.json:
            out.write(f"{qa.index_dir}: {done.moments} text vectors made again with {done.new_model} ({done.dim}-d; "
                      f"were {done.old_model}) in {done.seconds:.1f} s\n" if done.changed else
                      f"{qa.index_dir}: the text vectors are already {done.new_model}'s (--force makes them again)\n")
        if not args.paths:
            return 0
    if not args.paths:
        stats = qa.repair()
        out.write(f"rebuilt the keyword and vector indexes of {qa.index_dir} from the catalog: "
                  f"{stats['videos']} videos, {stats['moments']} moments\n")
        return 0
    missing = [str(p) for p in args.paths if not p.exists() and not p.is_symlink()]
    for m in missing:
        print(f"videoqa: {m}: no such file or folder", file=sys.stderr)
    report = qa.index([p for p in args.paths if str(p) not in missing], progress=progress,
                      force=args.force, repair=args.repair)
    if args.json:
        out.write(json.dumps({"index_dir": str(qa.index_dir), "profile": qa.profile, **report.to_dict()}) + "\n")
    else:
        out.write(f"index: {qa.index_dir}  profile: {qa.profile} ({qa.profile_reason})\n\n")
        _print_report(report, out)
    return 1 if (report.failed or missing) else 0


def search(qa: VideoQA, args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    top_k = settings.top_k
    if args.queries:
        queries = _read_queries(args.queries)
        if not args.json:  # a blank line in the JSON output keeps it in step with the input
            queries = [q for q in queries if q.strip()]
        for query, hits in qa.search_many(queries, top_k):
            if args.json:
                out.write(_json_line({"query": query, "hits": [h.to_dict() for h in hits]}))
            else:
                out.write(f"## {_shown(query)}\n")
                _print_hits(query, hits, out)
            out.flush()
        return 0
    if args.query is None:
        raise VideoQAError("give a question, or --queries FILE")
    query = _question(args.query)
    hits = qa.search(query, top_k)
    if args.json:
        out.write(_json_line({"query": query, "hits": [h.to_dict() for h in hits]}))
    else:
        _print_hits(query, hits, out)
    return 0


def ask(qa: VideoQA, args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    question = _question(args.question)
    if args.json:
        out.write(_json_line(qa.ask(question, settings.top_k).to_dict()))
    else:
        _print_answer(qa.ask_stream(question, settings.top_k), out)
    return 0


def serve_web(qa: VideoQA, args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from app.web import serve

    serve(qa, host=settings.host, port=settings.port)
    return 0


COMMANDS: dict[str, Command] = {"index": index, "search": search, "ask": ask, "eval": eval_questions,
                                "library": library, "models": models, "serve": serve_web, "settings": show_settings}
"""Each subcommand's function, by name (app.cli gives every subparser its own)."""


