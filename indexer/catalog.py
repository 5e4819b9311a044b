"""The SQLite catalog: the source of truth of an index.

Videos, moments, keyframes (with their JPEGs), vectors, indexing runs and failures
live here. A video becomes visible in one transaction with everything that belongs to
it, so a crash never leaves a half-indexed video. The FAISS and Whoosh indexes are
derived from this file and can be rebuilt from it (:mod:`indexer.derived`).

The ``generation`` counter in ``meta`` goes up with every change that search can see;
derived indexes record the generation they reflect.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from indexer.schema import SCHEMA_VERSION, Keyframe, Moment, Video
from models.errors import IndexMismatchError

__all__ = ["Added", "Catalog", "Failure", "now"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    content_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    mtime_ns INTEGER NOT NULL DEFAULT 0,
    ctime_ns INTEGER NOT NULL DEFAULT 0,
    duration REAL NOT NULL DEFAULT 0,
    fps REAL NOT NULL DEFAULT 0,
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    has_audio INTEGER NOT NULL DEFAULT 0,
    language TEXT,
    indexed_at TEXT NOT NULL,
    run_id INTEGER
);
CREATE INDEX IF NOT EXISTS videos_path ON videos(path);
CREATE TABLE IF NOT EXISTS moments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    text TEXT NOT NULL,
    language TEXT
);
CREATE INDEX IF NOT EXISTS moments_video ON moments(video_id);
CREATE TABLE IF NOT EXISTS keyframes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    t REAL NOT NULL,
    score REAL NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    jpeg BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS keyframes_video ON keyframes(video_id);
CREATE TABLE IF NOT EXISTS vectors (
    space TEXT NOT NULL,
    owner_id INTEGER NOT NULL,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    PRIMARY KEY (space, owner_id)
);
CREATE INDEX IF NOT EXISTS vectors_video ON vectors(video_id);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    settings TEXT NOT NULL DEFAULT '{}',
    indexed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,
    content_id TEXT,
    stage TEXT NOT NULL,
    error TEXT NOT NULL,
    run_id INTEGER,
    at TEXT NOT NULL
);
"""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Added:
    """What :meth:`Catalog.add_video` wrote and what it replaced."""

    video_id: int
    moment_ids: list[int]
    keyframe_ids: list[int]
    replaced_videos: list[int]
    replaced_vectors: dict[str, list[int]]


class Failure(dict):
    """A file that could not be indexed: path, stage, error, when."""


class Catalog:
    """One SQLite file. Safe to share between threads (one connection, serialised)."""

    FILENAME = "catalog.sqlite3"

    def __init__(self, index_dir: Path, *, readonly: bool = False):
        self.index_dir = Path(index_dir)
        self.path = self.index_dir / self.FILENAME
        self.readonly = readonly
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(self.path)
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        if not readonly:
            with self._lock, self._db:
                self._db.executescript(_SCHEMA)
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
        version = self.get_meta("schema_version")
        if version is not None and int(version) != SCHEMA_VERSION:
            raise IndexMismatchError(
                f"{self.path}: catalog schema version {version}, this videoqa reads version {SCHEMA_VERSION}; "
                "index the videos again into a new --index-dir"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    def _bump(self) -> None:
        self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")

    def manifest(self) -> dict[str, Any]:
        raw = self.get_meta("manifest")
        return json.loads(raw) if raw else {}

    def set_manifest(self, manifest: dict[str, Any]) -> None:
        self.set_meta("manifest", json.dumps(manifest, sort_keys=True))

    # -- runs and failures --------------------------------------------------------------
    def start_run(self, settings: dict[str, Any]) -> int:
        with self._lock, self._db:
            cur = self._db.execute("INSERT INTO runs(started_at, settings) VALUES (?, ?)",
                                   (now(), json.dumps(settings, default=str)))
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, indexed: int, skipped: int, failed: int) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE runs SET finished_at=?, indexed=?, skipped=?, failed=? WHERE id=?",
                             (now(), indexed, skipped, failed, run_id))

    def record_failure(self, path: str, stage: str, error: str, run_id: int | None,
                       content_id: str | None = None) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?)",
                             (path, content_id, stage, error, run_id, now()))

    def clear_failure(self, path: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM failures WHERE path=?", (path,))

    def failures(self) -> list[Failure]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM failures ORDER BY path").fetchall()
        return [Failure(dict(r)) for r in rows]

    # -- videos -------------------------------------------------------------------------
    @staticmethod
    def _video(row: sqlite3.Row) -> Video:
        return Video(
            id=row["id"], content_id=row["content_id"], path=row["path"], name=row["name"],
            duration=row["duration"], fps=row["fps"], width=row["width"], height=row["height"],
            has_audio=bool(row["has_audio"]), language=row["language"], indexed_at=row["indexed_at"],
            size=row["size"], mtime_ns=row["mtime_ns"], ctime_ns=row["ctime_ns"],
        )

    def video_by_content(self, content_id: str) -> Video | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM videos WHERE content_id=?", (content_id,)).fetchone()
        return self._video(row) if row else None

    def video_by_path(self, path: str) -> Video | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM videos WHERE path=?", (path,)).fetchone()
        return self._video(row) if row else None

    def videos(self, ids: Iterable[int] | None = None) -> list[Video]:
        with self._lock:
            if ids is None:
                rows = self._db.execute("SELECT * FROM videos ORDER BY name, id").fetchall()
            else:
                ids = list(ids)
                rows = self._db.execute(
                    f"SELECT * FROM videos WHERE id IN ({','.join('?' * len(ids))})", ids
                ).fetchall() if ids else []
        return [self._video(r) for r in rows]

    def count_videos(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM videos").fetchone()[0])

    def move_video(self, video_id: int, path: str, stat: os.stat_result) -> None:
        """A known file seen at another path (moved or renamed): update where it is.

        The name is searchable (it is the video's title), so this is a visible change.
        """
        with self._lock, self._db:
            self._db.execute("UPDATE videos SET path=?, name=?, size=?, mtime_ns=?, ctime_ns=? WHERE id=?",
                             (path, Path(path).name, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, video_id))
            self._db.execute("DELETE FROM failures WHERE path=?", (path,))
            self._bump()

    def add_video(
        self,
        *,
        content_id: str,
        path: str,
        stat: os.stat_result | None,
        info: dict[str, Any],
        keyframes: Sequence[Keyframe],
        moments: Sequence[Moment],
        vectors: dict[str, tuple[str, np.ndarray]],
        run_id: int | None,
    ) -> "Added":
        """Insert a video and everything found in it, in one transaction.

        ``vectors`` maps a vector space to (owner kind, matrix): owner ``moment`` rows
        follow ``moments``, owner ``keyframe`` rows follow ``keyframes``. A video that
        was at the same path with other content is replaced; what it replaced is
        returned so derived indexes can drop it.
        """
        with self._lock, self._db:
            old = [r[0] for r in self._db.execute(
                "SELECT id FROM videos WHERE path=? OR content_id=?", (path, content_id))]
            replaced: dict[str, list[int]] = {}
            for vid_old in old:
                for space, owner_id in self._db.execute(
                        "SELECT space, owner_id FROM vectors WHERE video_id=?", (vid_old,)):
                    replaced.setdefault(space, []).append(owner_id)
            self._db.execute("DELETE FROM videos WHERE path=? OR content_id=?", (path, content_id))
            cur = self._db.execute(
                "INSERT INTO videos(content_id, path, name, size, mtime_ns, ctime_ns, duration, fps, width, height,"
                " has_audio, language, indexed_at, run_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (content_id, path, Path(path).name, stat.st_size if stat else 0, stat.st_mtime_ns if stat else 0,
                 stat.st_ctime_ns if stat else 0, info.get("duration", 0.0),
                 info.get("fps", 0.0), info.get("width", 0), info.get("height", 0),
                 int(bool(info.get("has_audio"))), info.get("language"), now(), run_id),
            )
            vid = int(cur.lastrowid)
            moment_ids = [
                int(self._db.execute(
                    'INSERT INTO moments(video_id, kind, start, "end", text, language) VALUES (?,?,?,?,?,?)',
                    (vid, m.kind, m.start, m.end, m.text, m.language)).lastrowid)
                for m in moments
            ]
            keyframe_ids = [
                int(self._db.execute(
                    "INSERT INTO keyframes(video_id, t, score, width, height, jpeg) VALUES (?,?,?,?,?,?)",
                    (vid, k.t, k.score, k.width, k.height, k.jpeg)).lastrowid)
                for k in keyframes
            ]
            for space, (owner, matrix) in vectors.items():
                ids = moment_ids if owner == "moment" else keyframe_ids
                if len(ids) != len(matrix):
                    raise ValueError(f"{space}: {len(matrix)} vectors for {len(ids)} {owner}s")
                self._db.executemany(
                    "INSERT INTO vectors(space, owner_id, video_id, vector) VALUES (?,?,?,?)",
                    [(space, oid, vid, np.asarray(v, dtype=np.float32).tobytes()) for oid, v in zip(ids, matrix)],
                )
            self._db.execute("DELETE FROM failures WHERE path=?", (path,))
            self._bump()
        return Added(vid, moment_ids, keyframe_ids, old, replaced)

    def remove_video(self, video_id: int) -> dict[str, list[int]]:
        """Delete a video and all it owns; returns its vector ids per space."""
        with self._lock, self._db:
            owned: dict[str, list[int]] = {}
            for space, owner_id in self._db.execute(
                    "SELECT space, owner_id FROM vectors WHERE video_id=?", (video_id,)):
                owned.setdefault(space, []).append(owner_id)
            self._db.execute("DELETE FROM videos WHERE id=?", (video_id,))
            self._bump()
        return owned

    # -- moments, keyframes, vectors ---------------------------------------------------
    @staticmethod
    def _moment(row: sqlite3.Row) -> Moment:
        return Moment(row["start"], row["end"], row["kind"], row["text"], row["language"], row["id"], row["video_id"])

    def moments(self, ids: Sequence[int]) -> dict[int, Moment]:
        out: dict[int, Moment] = {}
        ids = list(ids)
        with self._lock:
            for i in range(0, len(ids), 900):
                chunk = ids[i: i + 900]
                for row in self._db.execute(
                    f"SELECT * FROM moments WHERE id IN ({','.join('?' * len(chunk))})", chunk
                ):
                    out[row["id"]] = self._moment(row)
        return out

    def moments_of(self, video_id: int) -> list[Moment]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM moments WHERE video_id=? ORDER BY start", (video_id,)).fetchall()
        return [self._moment(r) for r in rows]

    def keyframes_of(self, video_id: int) -> list[Keyframe]:
        """A video's keyframes without their JPEGs (see :meth:`keyframe_jpeg`)."""
        with self._lock:
            rows = self._db.execute("SELECT id, t, score, width, height FROM keyframes WHERE video_id=? ORDER BY t",
                                    (video_id,)).fetchall()
        return [Keyframe(t=r["t"], score=r["score"], width=r["width"], height=r["height"], id=r["id"]) for r in rows]

    def keyframes_by_id(self, ids: Sequence[int]) -> dict[int, Keyframe]:
        """Keyframes (without their JPEGs) by id, with their video ids."""
        out: dict[int, Keyframe] = {}
        ids = list(ids)
        with self._lock:
            for i in range(0, len(ids), 900):
                chunk = ids[i: i + 900]
                for r in self._db.execute(
                    f"SELECT id, video_id, t, score, width, height FROM keyframes WHERE id IN "
                    f"({','.join('?' * len(chunk))})", chunk,
                ):
                    out[r["id"]] = Keyframe(t=r["t"], score=r["score"], width=r["width"], height=r["height"],
                                            id=r["id"], video_id=r["video_id"])
        return out

    def keyframe_jpeg(self, keyframe_id: int) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT jpeg FROM keyframes WHERE id=?", (keyframe_id,)).fetchone()
        return bytes(row[0]) if row else None

    def vectors(self, space: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of every vector in a space."""
        with self._lock:
            rows = self._db.execute("SELECT owner_id, vector FROM vectors WHERE space=? ORDER BY owner_id",
                                    (space,)).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        mat = np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        return ids, mat

    def vector_owners(self, space: str) -> list[int]:
        """The ids of every owner (moment or keyframe) with a vector in ``space``, ascending."""
        with self._lock:
            return [int(r[0]) for r in self._db.execute(
                "SELECT owner_id FROM vectors WHERE space=? ORDER BY owner_id", (space,))]

    def replace_vectors(self, space: str, owner_ids: Sequence[int], matrix: np.ndarray,
                        *, manifest_space: dict[str, Any]) -> None:
        """Write new vectors for existing owners of ``space`` and record the model that made them
        in the manifest, in one transaction: a reader sees the old vectors with the old record or
        the new with the new, never a mix."""
        if len(owner_ids) != len(matrix):
            raise ValueError(f"{space}: {len(matrix)} vectors for {len(owner_ids)} owners")
        manifest = self.manifest()
        manifest.setdefault("spaces", {})[space] = manifest_space
        with self._lock, self._db:
            self._db.executemany("UPDATE vectors SET vector=? WHERE space=? AND owner_id=?",
                                 [(np.asarray(v, dtype=np.float32).tobytes(), space, int(oid))
                                  for oid, v in zip(owner_ids, matrix)])
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('manifest', ?)",
                             (json.dumps(manifest, sort_keys=True),))
            self._bump()

    def vectors_of(self, space: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """{owner id: float32 vector} of the given owners in a space (ids it lacks are left out)."""
        ids = [int(i) for i in ids]
        with self._lock:
            rows = self._db.execute(f"SELECT owner_id, vector FROM vectors WHERE space=? AND owner_id IN "
                                    f"({','.join('?' * len(ids))})", (space, *ids)).fetchall() if ids else []
        return {int(r[0]): np.frombuffer(r[1], dtype=np.float32) for r in rows}

    def count_moments(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM moments").fetchone()[0])

    def count_vectors(self, space: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM vectors WHERE space=?", (space,)).fetchone()[0])

    def stats(self) -> dict[str, int]:
        with self._lock:
            q = lambda sql: int(self._db.execute(sql).fetchone()[0])  # noqa: E731
            return {
                "videos": self.count_videos(),
                "moments": self.count_moments(),
                "keyframes": q("SELECT COUNT(*) FROM keyframes"),
                "failures": q("SELECT COUNT(*) FROM failures"),
                "generation": self.generation,
            }
