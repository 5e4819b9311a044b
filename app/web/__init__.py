"""The web UI: a Gradio page (Ask, Library, Status) mounted in a FastAPI app that also serves media.

* ``/media/video/{id}`` streams an indexed video (HTTP range requests, so the player can
  seek); ``/media/keyframe/{id}`` serves a keyframe's JPEG from the catalog. Only indexed
  files can be reached: ids, never paths, come from the browser.
* ``/healthz`` answers ``{"status": "ok", "profile": ...}`` without a login (for health checks).
* Binds 127.0.0.1 unless told otherwise; with ``auth`` (user:password) both the page and
  the media need a login.
"""

import logging
import mimetypes
import os
import threading
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, Response

from app.qa import VideoQA
from app.web.ui import CSS, SEEK_JS, build_blocks, safe_name
from models.errors import ConfigError

__all__ = ["build_app", "serve", "safe_name", "parse_auth"]

# FastAPI reads the routes' annotations (Request) at run time: no postponed annotations here.

log = logging.getLogger(__name__)


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``user:password`` -> (user, password); None when no login is wanted."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError("auth must be user:password (both non-empty)")
    return user, password


def build_app(qa: VideoQA) -> Any:
    """The FastAPI application: media routes plus the Gradio page at /."""
    s = qa.settings
    auth = parse_auth(s.auth)
    app = FastAPI(title="videoqa", docs_url=None, redoc_url=None, openapi_url=None)
    gradio_app: dict[str, Any] = {}

    def check_login(request: Request) -> None:
        if auth is None:
            return
        inner = gradio_app.get("app")
        cookie_id = getattr(inner, "cookie_id", "")
        token = request.cookies.get(f"access-token-{cookie_id}") or \
            request.cookies.get(f"access-token-unsecure-{cookie_id}")
        if inner is None or not token or inner.tokens.get(token) is None:
            raise HTTPException(status_code=401, detail="log in first")

    # Routes added before the Gradio mount take precedence over its catch-all at "/".
    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """For container health checks and load balancers: cheap, no login, nothing about the library."""
        return {"status": "ok", "profile": qa.profile}

    @app.get("/media/video/{video_id}")
    def media_video(video_id: int, request: Request) -> Any:
        check_login(request)
        video = qa.video(video_id)
        if video is None or not Path(video.path).is_file():
            raise HTTPException(status_code=404, detail="no such video, or its file is gone")
        media_type = mimetypes.guess_type(video.path)[0] or "application/octet-stream"
        return FileResponse(video.path, media_type=media_type)

    @app.get("/media/keyframe/{keyframe_id}")
    def media_keyframe(keyframe_id: int, request: Request) -> Any:
        check_login(request)
        jpeg = qa.retriever.catalog.keyframe_jpeg(keyframe_id)
        if jpeg is None:
            raise HTTPException(status_code=404, detail="no such keyframe")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    demo = build_blocks(qa).queue(default_concurrency_limit=8)
    app = gr.mount_gradio_app(
        app, demo, path="", auth=auth, show_error=False, ssr_mode=False, footer_links=["api"],
        max_file_size=s.max_upload_mb * 1024 * 1024, css=CSS, head=SEEK_JS, i18n=demo.vq_i18n,
        server_name=s.host, server_port=s.port,
    )
    gradio_app["app"] = app.routes[-1].app  # the mounted Gradio application (holds the login tokens)
    return app


def serve(qa: VideoQA, host: str | None = None, port: int | None = None) -> None:
    """Serve the page until interrupted; prints the URL."""
    import uvicorn

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    host = host or qa.settings.host
    port = port or qa.settings.port
    qa.ensure_index()  # a new library starts empty: videos can be added from the page
    # Load the query-side models while the page starts, so the first question does not wait.
    threading.Thread(target=qa.warm_up, name="videoqa-warm-up", daemon=True).start()
    if host not in ("127.0.0.1", "localhost", "::1") and not qa.settings.auth:
        log.warning("serving on %s without a login: anyone who can reach this address can use it "
                    "(set VIDEOQA_AUTH=user:password)", host)
    app = build_app(qa)
    print(f"videoqa: serving {qa.index_dir} ({qa.profile} profile) on http://{host}:{port}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
