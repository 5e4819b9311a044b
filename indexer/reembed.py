"""Re-embedding: the text vectors of an index made again with the text embedder the settings name.

An index keeps every moment's text in its catalog, so a change of text embedder (a new default
after an upgrade, or a setting changed by hand) does not need the videos again: only the text
vectors are computed anew from the stored text, which costs a small part of indexing (no
decoding, no speech, no text reading). The vectors and the manifest's record of the model are
replaced in one SQLite transaction, so a run that is stopped leaves the index as it was, and the
derived FAISS and keyword files are rebuilt from the catalog afterwards, under the writer lock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.catalog import Catalog
from indexer.derived import DerivedIndexes
from indexer.locks import writer_lock
from indexer.manifest import write_manifest
from indexer.pipeline import IndexOptions
from indexer.schema import TEXT_SPACE
from models import ModelHub
from models.errors import ConfigError

__all__ = ["ReembedReport", "reembed_text"]

log = logging.getLogger(__name__)


@dataclass
class ReembedReport:
    """What :func:`reembed_text` did."""

    index_dir: str
    old_model: str | None
    new_model: str
    moments: int
    dim: int
    seconds: float
    changed: bool  # False: the index already had this model's vectors and nothing was written


def reembed_text(index_dir: Path, hub: ModelHub, options: IndexOptions = IndexOptions(), *,
                 batch_size: int = 256, force: bool = False, progress: bool = False) -> ReembedReport:
    """Replace every moment's text vector with the settings' text embedder's, from the stored text.

    Does nothing when the index already records that model (unless ``force``). Holds the writer
    lock throughout: an indexing run and a re-embedding never overlap.
    """
    from tqdm.auto import tqdm

    index_dir = Path(index_dir)
    embedder = hub.text_embedder
    if embedder is None:
        raise ConfigError("the settings name no text embedder: there is nothing to re-embed with")
    if not (index_dir / Catalog.FILENAME).exists():
        raise FileNotFoundError(f"{index_dir}: no index here (no {Catalog.FILENAME})")
    t0 = time.perf_counter()
    with writer_lock(index_dir), Catalog(index_dir) as catalog:
        old = catalog.manifest().get("spaces", {}).get(TEXT_SPACE, {})
        if old.get("model") == embedder.model_name and not force:
            return ReembedReport(str(index_dir), old.get("model"), embedder.model_name, 0, int(old.get("dim") or 0),
                                 time.perf_counter() - t0, False)
        ids = catalog.vector_owners(TEXT_SPACE)
        moments = catalog.moments(ids)
        missing = [i for i in ids if i not in moments]
        if missing:  # a vector without its moment: the catalog is damaged, and writing over it would hide that
            raise ConfigError(f"{catalog.path}: {len(missing)} text vectors have no moment (e.g. id {missing[0]})")
        embedder.load()
        parts = []
        with tqdm(total=len(ids), desc="moments", unit="moment", disable=not progress, dynamic_ncols=True) as bar:
            for start in range(0, len(ids), batch_size):
                chunk = ids[start:start + batch_size]
                parts.append(embedder.embed_documents([moments[i].text for i in chunk]))
                bar.update(len(chunk))
        dim = int(embedder.dim)
        matrix = np.vstack(parts).astype(np.float32) if parts else np.zeros((0, dim), np.float32)
        spec = {"model": embedder.model_name, "backend": embedder.backend_name, "dim": dim}
        catalog.replace_vectors(TEXT_SPACE, ids, matrix, manifest_space=spec)
        write_manifest(catalog, {"spaces": {TEXT_SPACE: spec}})  # the same record, mirrored to manifest.json
        DerivedIndexes(catalog, options.vector_index, options.keyword_index).make_usable()
    seconds = time.perf_counter() - t0
    log.info("%s: %d text vectors made again with %s (%d-d) in %.1f s", index_dir, len(ids),
             embedder.model_name, dim, seconds)
    return ReembedReport(str(index_dir), old.get("model"), embedder.model_name, len(ids), dim, seconds, True)
