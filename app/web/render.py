"""HTML of the web UI's answer, evidence cards, library and status (all text escaped)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable, Sequence

from app.answering import Answer, Citation, quotes
from app.web.i18n import text
from indexer.schema import format_time
from retriever import Hit, ScoredMoment

__all__ = ["answer_html", "progress_html", "cards_html", "library_html", "status_html", "player_id"]

Spans = Callable[[str], list[tuple[int, int]]]


def player_id(video_id: int) -> str:
    return f"vq-player-{video_id}"


def _seek_link(video_id: int, start: float, label: str) -> str:
    """A link that moves the video's player to ``start`` (see SEEK_JS)."""
    return (f"<a href='#' class='vq-cite' data-player='{player_id(video_id)}' data-t='{start:.3f}' "
            f"onclick='return vqSeek(this)'>{html.escape(label)}</a>")


def _highlight(text_: str, spans: Sequence[tuple[int, int]]) -> str:
    out, last = [], 0
    for a, b in sorted(spans):
        if a < last:
            continue
        out.append(html.escape(text_[last:a]))
        out.append(f"<mark>{html.escape(text_[a:b])}</mark>")
        last = b
    out.append(html.escape(text_[last:]))
    return "".join(out)


def _video_ids(hits: Sequence[Hit]) -> dict[str, int]:
    return {h.video: h.video_id for h in hits}


def _citation(c: Citation, ids: dict[str, int]) -> str:
    vid = ids.get(c.video)
    label = c.label()
    return _seek_link(vid, c.start, label) if vid is not None else html.escape(label)


def _quotes(citations: Sequence[Citation], answer: str) -> str:
    return "".join(f"<blockquote class='vq-quote'>{html.escape(t)}</blockquote>" for t in quotes(citations, answer))


def answer_html(answer: Answer, lang: str) -> str:
    ids = _video_ids(answer.hits)
    if not answer.found:
        closest = " · ".join(_citation(c, ids) for c in answer.closest)
        more = (f"<p class='vq-closest'>{html.escape(text(lang, 'closest'))} {closest}</p>"
                f"{_quotes(answer.closest, '')}" if closest else "")
        return f"<div class='vq-answer'><strong>{html.escape(text(lang, 'nothing'))}</strong>{more}</div>"
    cites = " · ".join(_citation(c, ids) for c in answer.citations)
    parts = [f"<div class='vq-answer'><p class='vq-answer-text'>{html.escape(answer.answer)}</p>"
             f"<p class='vq-citations'>— {cites}</p>{_quotes(answer.citations, answer.answer)}"]
    if len(answer.candidates) > 1:
        rows = "".join(f"<li><span class='vq-meta'>{c.score:.3f}</span> {html.escape(c.name)}: "
                       f"{html.escape(c.answer[:200])}</li>" for c in answer.candidates)
        parts.append(f"<details><summary>{html.escape(text(lang, 'candidates'))}</summary><ol>{rows}</ol></details>")
    parts.append("</div>")
    return "".join(parts)


def progress_html(message: str, partial: str = "") -> str:
    body = f"<p class='vq-answer-text'>{html.escape(partial)}</p>" if partial else ""
    return f"<div class='vq-answer'><p class='vq-meta'>{html.escape(message)}</p>{body}</div>"


def _moment(hit: Hit, m: ScoredMoment, spans: Spans) -> str:
    link = _seek_link(hit.video_id, m.start, m.cite())
    if m.kind == "keyframe" and m.keyframe_id is not None:
        body = f"<img class='vq-inline-thumb' src='/media/keyframe/{m.keyframe_id}' alt=''>"
    elif m.kind == "screen":  # text read off the frame: the frame beside it
        thumb = (f"<img class='vq-inline-thumb' src='/media/keyframe/{m.keyframe_id}' alt=''> "
                 if m.keyframe_id is not None else "")
        body = f"{thumb}<span class='vq-screen-text'>{_highlight(m.text, spans(m.text))}</span>"
    else:
        body = _highlight(m.text, spans(m.text))
        # the sentences around it, greyed: context to read, not part of the cited span
        before = " ".join(html.escape(c.text) for c in m.context if c.end <= m.start)
        after = " ".join(html.escape(c.text) for c in m.context if c.start >= m.end)
        body = (f"<span class='vq-context'>{before}</span> " if before else "") + body + \
            (f" <span class='vq-context'>{after}</span>" if after else "")
    return (f"<div class='vq-moment'>{link} <span class='vq-meta'>[{html.escape(m.kind)} {m.score:.2f}]</span> "
            f"{body}</div>")


def cards_html(hits: Sequence[Hit], lang: str, spans: Spans, *, video_available: Callable[[Hit], bool]) -> str:
    """One evidence card per hit: player at the best moment, moments, keyframes, channel scores."""
    if not hits:
        return f"<p class='vq-meta'>{html.escape(text(lang, 'no_match'))}</p>"
    cards = []
    for rank, hit in enumerate(hits, 1):
        channels = " · ".join(f"{html.escape(k)} {v:.2f}" for k, v in hit.channels.items())
        start = hit.moments[0].start if hit.moments else 0.0
        player = (f"<video id='{player_id(hit.video_id)}' class='vq-player' controls preload='metadata' "
                  f"src='/media/video/{hit.video_id}#t={start:.3f}'></video>" if video_available(hit) else "")
        moments = "".join(_moment(hit, m, spans) for m in hit.moments) or \
            f"<div class='vq-meta'>{html.escape(text(lang, 'whole_video'))}</div>"
        frames = "".join(
            f"<figure>{_seek_link(hit.video_id, k['t'], format_time(k['t']))}"
            f"<img src='/media/keyframe/{k['id']}' alt='' loading='lazy'></figure>"
            for k in hit.keyframes)
        cards.append(
            f"<div class='vq-card' data-video='{hit.video_id}'><h4>{rank}. {html.escape(hit.name)} "
            f"<span class='vq-meta'>{html.escape(text(lang, 'score'))} {hit.score:.3f} ({channels})</span></h4>"
            f"{player}<div class='vq-moments'>{moments}</div><div class='vq-frames'>{frames}</div></div>")
    return "".join(cards)


def library_html(library: dict[str, Any], lang: str, first_keyframe: Callable[[int], int | None],
                 library_dir: Path) -> str:
    videos, failures = library["videos"], library["failures"]
    if not videos and not failures:
        return f"<p class='vq-meta'>{html.escape(text(lang, 'library_empty'))}</p>"
    t = lambda key: html.escape(text(lang, key))  # noqa: E731
    head = "".join(f"<th>{t(k)}</th>" for k in ("col_thumb", "col_name", "col_duration", "col_language",
                                                 "col_status", "col_where", "col_error"))
    rows = []
    for v in videos:
        kid = first_keyframe(v["id"])
        thumb = f"<img src='/media/keyframe/{kid}' alt=''>" if kid is not None else ""
        rows.append(f"<tr class='vq-ok'><td>{thumb}</td><td>{html.escape(v['name'])}</td>"
                    f"<td>{format_time(v['duration'])}</td><td>{html.escape(v['language'] or '-')}</td>"
                    f"<td>{t('indexed')}</td><td>{html.escape(_where(v['path'], library_dir))}</td><td></td></tr>")
    for f in failures:
        rows.append(f"<tr class='vq-failed'><td></td><td>{html.escape(Path(f['path']).name)}</td><td></td><td></td>"
                    f"<td>{t('failed')}</td><td>{html.escape(_where(f['path'], library_dir))}</td>"
                    f"<td>[{html.escape(f['stage'])}] {html.escape(f['error'])}</td></tr>")
    return f"<table class='vq-library'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _where(path: str, library_dir: Path) -> str:
    """The folder of a file, relative to the library when it is inside it."""
    folder = Path(path).parent
    try:
        return str(folder.relative_to(library_dir)) or "."
    except ValueError:
        return folder.name or str(folder)


def status_html(info: dict[str, Any], loaded: Sequence[dict[str, Any]], lang: str) -> str:
    t = lambda key: html.escape(text(lang, key))  # noqa: E731
    live = {m["role"] for m in loaded}
    rows = []
    for r in info["roles"]:
        if r["profile"] != info["profile"]:
            continue
        if r.get("off"):
            where = html.escape(r["reason"])
        elif r.get("found"):
            where = f"{html.escape(r['source'])}<br><code>{html.escape(r['path'])}</code>"
        else:
            where = f"<strong>{t('missing')}</strong>: {html.escape(r['reason'])}"
        rows.append(f"<tr><td>{html.escape(r['role'])}</td><td>{html.escape(r['backend'] or '-')}</td>"
                    f"<td>{html.escape(r['model'] or '-')}</td><td>{where}</td>"
                    f"<td>{'✓' if r['role'] in live else ''}</td></tr>")
    head = "".join(f"<th>{t(k)}</th>" for k in ("role", "backend", "model", "where", "loaded"))
    return (f"<p><strong>{t('profile')}:</strong> {html.escape(info['profile'])} "
            f"<span class='vq-meta'>({html.escape(info['why'])})</span></p>"
            f"<table class='vq-status'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


