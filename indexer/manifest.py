"""The manifest: how an index was built (schema version, models, vector dimensions).

Kept in the catalog and mirrored to ``manifest.json`` for people and tools. Opening an
index with other models than it was built with is a clear error, not silent garbage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from indexer.catalog import Catalog
from indexer.schema import SCHEMA_VERSION, TEXT_SPACE
from models.errors import IndexMismatchError

__all__ = ["check_manifest", "write_manifest", "atomic_write_text"]


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``path`` so that a reader sees the old text or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_manifest(catalog: Catalog, wanted: dict[str, Any]) -> dict[str, Any]:
    """Compare how the index was built with what the settings want.

    ``wanted`` has ``spaces``: {space: {"model": ..., "dim": ...}}. A space built with
    another model or dimension is a clear error, not silent garbage. Returns the
    stored manifest (empty for a new index).
    """
    have = catalog.manifest()
    for space, spec in wanted.get("spaces", {}).items():
        old = have.get("spaces", {}).get(space)
        if old and (old.get("model") != spec.get("model") or (spec.get("dim") and old.get("dim") != spec.get("dim"))):
            raise IndexMismatchError(
                f"{catalog.index_dir}: the {space} vectors were made with {old.get('model')} ({old.get('dim')}-d), "
                f"the settings ask for {spec.get('model')}"
                f"{' (' + str(spec.get('dim')) + '-d)' if spec.get('dim') else ''}; use the same model, "
                + ("or make the text vectors again with the new one from the stored text (no video is read "
                   f"again): videoqa index --reembed --index-dir {catalog.index_dir}; "
                   if space == TEXT_SPACE else "")
                + "or index into another --index-dir"
            )
    return have


def write_manifest(catalog: Catalog, manifest: dict[str, Any]) -> None:
    """Merge ``manifest`` into the stored one (spaces are added to, not replaced) and write both copies."""
    merged = catalog.manifest()
    spaces = {**merged.get("spaces", {}), **manifest.get("spaces", {})}
    merged.update(manifest)
    merged["spaces"] = spaces
    merged["schema_version"] = SCHEMA_VERSION
    catalog.set_manifest(merged)
    atomic_write_text(catalog.index_dir / "manifest.json", json.dumps(merged, indent=2, sort_keys=True) + "\n")

