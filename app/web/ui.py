"""The Gradio Blocks of the web UI: Ask, Library and Status tabs."""

import logging
import queue
import re
import shutil
import threading
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from app.qa import VideoQA
from app.web.i18n import STRINGS, language_of, text
from app.web.render import answer_html, cards_html, library_html, progress_html, status_html
from indexer.media import VIDEO_EXTENSIONS
from models.errors import VideoQAError
from retriever import clean_query

__all__ = ["build_blocks", "safe_name", "CSS", "SEEK_JS"]

log = logging.getLogger(__name__)

CSS = """
.vq-card {border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 14px; margin: 8px 0;}
.vq-card h4 {margin: 0 0 6px 0;}
.vq-meta {color: #57606a; font-size: 0.85em; font-weight: normal;}
.vq-context {color: #8c959f;}
.vq-player {width: 100%; max-width: 560px; max-height: 320px; background: #000; border-radius: 6px;}
.vq-moment {margin: 4px 0;}
.vq-cite {font-family: monospace; background: #eef; padding: 1px 4px; border-radius: 4px; text-decoration: none;}
.vq-frames figure {display: inline-block; margin: 4px 6px 0 0; text-align: center; font-size: 0.75em;}
.vq-frames img, .vq-inline-thumb, .vq-library img {height: 64px; border-radius: 4px; display: block;}
.vq-inline-thumb {display: inline-block; vertical-align: middle;}
.vq-answer-text {font-size: 1.1em;}
.vq-quote {margin: 2px 0 6px 12px; padding-left: 8px; border-left: 3px solid #d0d7de; color: #57606a;}
.vq-library td, .vq-status td {vertical-align: middle; padding: 2px 8px;}
.vq-failed td {color: #b42318;}
mark {background: #fff3b0; padding: 0 1px;}
"""

# Gradio reads the handlers' annotations (gr.Request) at run time: no postponed annotations here.

# Moves a card's player to a link's time; called by the citation and moment links.
SEEK_JS = """
<script>
function vqSeek(el) {
  var p = document.getElementById(el.dataset.player);
  if (!p) { return false; }
  var t = parseFloat(el.dataset.t);
  var go = function () { p.currentTime = t; p.scrollIntoView({block: 'nearest', behavior: 'smooth'}); };
  if (p.readyState >= 1) { go(); } else { p.addEventListener('loadedmetadata', go, {once: true}); p.load(); }
  return false;
}
</script>
"""


def safe_name(name: str) -> str:
    """A file name with no folders, no leading dots and no characters that need quoting."""
    base = Path(name.replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^\w.-]+", "_", stem, flags=re.UNICODE).strip("._") or "video"
    suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""
    return stem[:120] + suffix


def _unique(folder: Path, name: str) -> Path:
    path, n = folder / name, 2
    while path.exists():
        path = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
        n += 1
    return path


def build_blocks(qa: VideoQA) -> Any:
    s = qa.settings
    library_dir = Path(s.library_dir)
    i18n = gr.I18n(**STRINGS) if s.ui_language == "auto" else None

    def label(key: str) -> Any:
        return i18n(key) if i18n is not None else text(s.ui_language, key)

    def lang_of(request: gr.Request | None) -> str:
        header = request.headers.get("accept-language") if request is not None else None
        return language_of(s.ui_language, header)

    def spans_for(question: str):
        return lambda t: qa.retriever.matched_spans(question, t)

    def available(hit) -> bool:
        return Path(hit.video).is_file()

    def ask(question: str, request: gr.Request) -> Iterator[tuple[str, str]]:
        lang = lang_of(request)
        question = clean_query(question)  # NUL, control characters, lone surrogates: as search takes it
        if not question:
            yield progress_html(text(lang, "empty_question")), ""
            return
        cards = ""
        try:
            yield progress_html(text(lang, "searching")), ""
            partial, name = "", ""
            for event in qa.ask_stream(question):
                if event.kind == "hits":
                    cards = cards_html(event.hits, lang, spans_for(question), video_available=available)
                    yield progress_html(text(lang, "searching")), cards
                elif event.kind == "candidate":
                    partial, name = "", Path(event.video).name
                elif event.kind == "token":
                    partial += event.text
                    yield progress_html(text(lang, "writing", name=name), partial), cards
                elif event.kind == "final" and event.answer is not None:
                    yield answer_html(event.answer, lang), cards
        except VideoQAError as exc:
            yield progress_html(f"{text(lang, 'error')}: {exc}"), cards
        except Exception:  # never a traceback in the page; the log keeps it
            log.exception("answering %r failed", question)
            yield progress_html(text(lang, "unexpected")), cards

    def first_keyframe(video_id: int) -> int | None:
        frames = qa.retriever.catalog.keyframes_of(video_id)
        return frames[0].id if frames else None

    def library_view(request: gr.Request | None = None) -> tuple[str, Any]:
        lang = lang_of(request)
        lib = qa.library()
        choices = [(f"{v['name']} ({v['id']})", v["id"]) for v in lib["videos"]]
        return library_html(lib, lang, first_keyframe, library_dir), gr.update(choices=choices, value=None)

    def run_index(paths: list[Path], lang: str, force: bool = False) -> Iterator[str]:
        """Index in a worker thread and report each file as it is done."""
        updates: queue.Queue = queue.Queue()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["report"] = qa.index(paths, force=force, executor="local",
                                             on_file=lambda d, n, r: updates.put((d, n, r)))
            except VideoQAError as exc:
                outcome["error"] = str(exc)
            except Exception as exc:  # noqa: BLE001 - shown in the page, logged with its traceback
                log.exception("indexing from the web UI failed")
                outcome["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                updates.put(None)

        threading.Thread(target=work, name="videoqa-web-index", daemon=True).start()
        lines: list[str] = []
        while (item := updates.get()) is not None:
            done, total, r = item
            status = text(lang, r.status) + (f" ({r.reason})" if r.reason and r.status != "indexed" else "")
            lines.append(text(lang, "working", done=done, total=total, name=Path(r.path).name, status=status))
            yield "\n".join(lines[-12:])
        if "error" in outcome:
            lines.append(f"{text(lang, 'error')}: {outcome['error']}")
        else:
            rep = outcome["report"]
            lines.append(text(lang, "done", indexed=rep.count("indexed"), skipped=rep.count("skipped"),
                              failed=rep.count("failed")))
        yield "\n".join(lines[-12:])

    def upload(files: list[Any] | None, request: gr.Request) -> Iterator[str]:
        lang = lang_of(request)
        if not files:
            return
        target = library_dir / "uploads"
        target.mkdir(parents=True, exist_ok=True)
        saved, problems = [], []
        for f in files:
            src = Path(getattr(f, "name", f))
            original = getattr(f, "orig_name", None) or src.name
            name = safe_name(original)
            if Path(name).suffix not in VIDEO_EXTENSIONS:
                problems.append(text(lang, "not_video", name=original))
                continue
            if src.stat().st_size > s.max_upload_mb * 1024 * 1024:
                problems.append(text(lang, "too_big", name=original, mb=s.max_upload_mb))
                continue
            dest = _unique(target, name)
            shutil.copyfile(src, dest)
            saved.append(dest)
        prefix = "\n".join(problems)
        if not saved:
            yield prefix
            return
        for lines in run_index(saved, lang):
            yield (prefix + "\n" if prefix else "") + lines

    def index_folder(folder: str, request: gr.Request) -> Iterator[str]:
        lang = lang_of(request)
        path = Path((folder or "").strip()).expanduser()
        if not folder or not path.is_dir():
            yield text(lang, "no_folder", path=folder or "")
            return
        yield from run_index([path], lang)

    def reindex(video_id: int | None, request: gr.Request) -> Iterator[str]:
        lang = lang_of(request)
        video = qa.video(video_id) if video_id is not None else None
        if video is None:
            yield text(lang, "pick_video")
            return
        yield from run_index([Path(video.path)], lang, force=True)

    def remove(video_id: int | None, request: gr.Request) -> str:
        lang = lang_of(request)
        video = qa.video(video_id) if video_id is not None else None
        if video is None:
            return text(lang, "pick_video")
        try:
            qa.remove(video.id)
        except VideoQAError as exc:
            return f"{text(lang, 'error')}: {exc}"
        return text(lang, "removed", name=video.name)

    def status_view(request: gr.Request) -> str:
        return status_html(qa.models(), qa.hub.loaded(), lang_of(request))

    with gr.Blocks(title="videoqa") as demo:
        gr.Markdown("# videoqa", elem_id="vq-title")
        gr.Markdown(label("intro"))
        with gr.Tabs():
            with gr.Tab(label("tab_ask"), id="ask"):
                with gr.Row():
                    question = gr.Textbox(label=label("question"), placeholder=label("question_placeholder"),
                                          scale=5, max_length=2000, elem_id="vq-question")
                    ask_button = gr.Button(label("ask"), variant="primary", scale=1, elem_id="vq-ask")
                answer_box = gr.HTML(elem_id="vq-answer")
                cards_box = gr.HTML(elem_id="vq-cards")
            with gr.Tab(label("tab_library"), id="library") as library_tab:
                with gr.Row():
                    uploads = gr.File(label=label("upload"), file_count="multiple", elem_id="vq-upload",
                                      file_types=sorted(VIDEO_EXTENSIONS))
                    with gr.Column():
                        folder = gr.Textbox(label=label("folder"), placeholder=label("folder_placeholder"),
                                            elem_id="vq-folder")
                        folder_button = gr.Button(label("index_folder"), elem_id="vq-index-folder")
                progress = gr.Textbox(label=label("progress"), lines=4, interactive=False, elem_id="vq-progress")
                with gr.Row():
                    pick = gr.Dropdown(label=label("select_video"), choices=[], elem_id="vq-pick")
                    reindex_button = gr.Button(label("reindex"), elem_id="vq-reindex")
                    remove_button = gr.Button(label("remove"), variant="stop", elem_id="vq-remove")
                    refresh_button = gr.Button(label("refresh"), elem_id="vq-refresh")
                library_box = gr.HTML(elem_id="vq-library")
            with gr.Tab(label("tab_status"), id="status") as status_tab:
                status_box = gr.HTML(elem_id="vq-status")

        ask_button.click(ask, inputs=question, outputs=[answer_box, cards_box], api_name="ask")
        question.submit(ask, inputs=question, outputs=[answer_box, cards_box], api_name=False)
        uploads.upload(upload, inputs=uploads, outputs=progress, api_name=False).then(
            library_view, outputs=[library_box, pick], api_name=False)
        folder_button.click(index_folder, inputs=folder, outputs=progress, api_name=False).then(
            library_view, outputs=[library_box, pick], api_name=False)
        reindex_button.click(reindex, inputs=pick, outputs=progress, api_name=False).then(
            library_view, outputs=[library_box, pick], api_name=False)
        remove_button.click(remove, inputs=pick, outputs=progress, api_name=False).then(
            library_view, outputs=[library_box, pick], api_name=False)
        refresh_button.click(library_view, outputs=[library_box, pick], api_name=False)
        library_tab.select(library_view, outputs=[library_box, pick], api_name=False)
        status_tab.select(status_view, outputs=status_box, api_name=False)
    demo.vq_i18n = i18n
    return demo
