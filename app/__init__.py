"""videoqa's application layer: settings, the :class:`VideoQA` facade, the CLI and the web UI."""

from app.answering import Answer, Candidate, Citation
from app.qa import VideoQA
from app.settings import Settings, load_settings

__all__ = ["Answer", "Candidate", "Citation", "Settings", "VideoQA", "load_settings"]
