"""One error hierarchy for the whole project.

It lives in the lowest layer so that every package can raise and catch the same
classes. The CLI turns a :class:`VideoQAError` into a one-line message and an exit
code; the web UI shows it on the page. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

__all__ = [
    "VideoQAError",
    "ConfigError",
    "ModelNotFoundError",
    "UnknownBackendError",
    "MediaError",
    "IndexMismatchError",
    "IndexLockedError",
]


class VideoQAError(Exception):
    """Base class of every error a user can act on."""

    exit_code = 1


class ConfigError(VideoQAError):
    """A setting has an invalid value, or a configuration file cannot be read."""

    exit_code = 2


class ModelNotFoundError(VideoQAError):
    """The weights of a model role cannot be found locally.

    The message says which role, which model, where it looked and how to get it.
    """

    exit_code = 3


class UnknownBackendError(VideoQAError):
    """The configuration names a backend that is not registered for a role."""

    exit_code = 2


class MediaError(VideoQAError):
    """A file cannot be read as a video (or audio) file."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class IndexMismatchError(VideoQAError):
    """An index was built with other models (or another schema) than the settings ask for."""

    exit_code = 4


class IndexLockedError(VideoQAError):
    """Another process is writing to the index."""

    exit_code = 5
