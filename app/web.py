"""The web page (Gradio Blocks): ask a question, read the answer and its citation, see the evidence.

A first version: question, answer with citation, and the top videos with the moments
and keyframes that earned their score. Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import base64
import html
import logging
import os
import threading
from typing import Any

from app.answering import Answer
from app.qa import VideoQA
from models.errors import VideoQAError

__all__ = ["build_ui", "serve"]

log = logging.getLogger(__name__)

CSS = """
.vq-hit {border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 14px; margin: 8px 0;}
.vq-hit h4 {margin: 0 0 4px 0;}
.vq-meta {color: #57606a; font-size: 0.85em;}
.vq-moment {margin: 4px 0;}
.vq-time {font-family: monospace; background: #eef; padding: 1px 4px; border-radius: 4px;}
.vq-frames img, .vq-moment img {height: 72px; margin: 4px 4px 0 0; border-radius: 4px; vertical-align: middle;}
.vq-frames figure {display: inline-block; margin: 0; text-align: center; font-size: 0.75em;}
"""


def render_answer(answer: Answer) -> str:
    if not answer.found:
        return f"**{html.escape(answer.answer)}**"
    cites = "; ".join(f"`{html.escape(c.label())}`" for c in answer.citations)
    return f"{html.escape(answer.answer)}\n\n— {cites}"


def _thumb(catalog: Any, keyframe_id: int | None, t: float) -> str:
    jpeg = catalog.keyframe_jpeg(keyframe_id) if keyframe_id is not None else None
    if not jpeg:
        return ""
    src = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    return f"<img src='{src}' alt='keyframe at {t:.1f}s'>"


def render_hits(qa: VideoQA, answer: Answer) -> str:
    if not answer.hits:
        return "<p class='vq-meta'>No video matched.</p>"
    parts = []
    catalog = qa.retriever.catalog
    for rank, hit in enumerate(answer.hits, 1):
        channels = ", ".join(f"{html.escape(k)} {v:.2f}" for k, v in hit.channels.items())
        moments = "".join(
            f"<div class='vq-moment'><span class='vq-time'>{html.escape(m.cite())}</span> "
            f"<span class='vq-meta'>[{html.escape(m.kind)} {m.score:.2f}]</span> "
            f"{html.escape(m.text) if m.text else _thumb(catalog, m.keyframe_id, m.start)}</div>"
            for m in hit.moments
        ) or "<div class='vq-meta'>No single moment matched; the video matched as a whole.</div>"
        frames = [f"<figure>{_thumb(catalog, kf['id'], kf['t'])}<figcaption>{kf['t']:.1f}s</figcaption></figure>"
                  for kf in hit.keyframes[:6]]
        parts.append(
            f"<div class='vq-hit'><h4>{rank}. {html.escape(hit.name)}</h4>"
            f"<div class='vq-meta'>score {hit.score:.3f} ({channels})</div>{moments}"
            f"<div class='vq-frames'>{''.join(frames)}</div></div>"
        )
    return "".join(parts)


def build_ui(qa: VideoQA) -> Any:
    import gradio as gr

    def ask(question: str) -> tuple[str, str]:
        question = (question or "").strip()
        if not question:
            return "Type a question first.", ""
        try:
            answer = qa.ask(question)
        except VideoQAError as exc:
            return f"**Error:** {html.escape(str(exc))}", ""
        except Exception:  # never a traceback in the page; the log keeps it
            log.exception("answering %r failed", question)
            return "**Error:** something went wrong while answering; see the server log.", ""
        return render_answer(answer), render_hits(qa, answer)

    with gr.Blocks(title="videoqa") as demo:
        gr.Markdown("# videoqa\nAsk a question about the videos in the library. Answers cite the video and "
                    "the moment.")
        with gr.Row():
            question = gr.Textbox(label="Question", placeholder="e.g. what happens during an eruption?",
                                  scale=5, max_length=2000, elem_id="vq-question")
            button = gr.Button("Ask", variant="primary", scale=1, elem_id="vq-ask")
        answer_box = gr.Markdown(elem_id="vq-answer")
        hits_box = gr.HTML(elem_id="vq-hits")
        gr.Markdown(f"<span class='vq-meta'>index: {html.escape(str(qa.index_dir))}</span>")
        button.click(ask, inputs=question, outputs=[answer_box, hits_box], api_name="ask")
        question.submit(ask, inputs=question, outputs=[answer_box, hits_box], api_name=False)
    return demo


def serve(qa: VideoQA, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the page until interrupted; prints the URL."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    _ = qa.retriever.catalog  # fail now, with a clear message, when there is no index
    # Load the query-side models while the page starts, so the first question does not wait.
    threading.Thread(target=qa.warm_up, name="videoqa-warm-up", daemon=True).start()
    demo = build_ui(qa)
    print(f"videoqa: serving {qa.index_dir} ({qa.profile} profile) on http://{host}:{port}", flush=True)
    demo.queue(default_concurrency_limit=8).launch(
        server_name=host, server_port=port, show_error=False, quiet=True, ssr_mode=False,
        footer_links=["api"], css=CSS,
    )
