"""Small indexes made without any model: clips of one moment each, keyword channel only."""

from __future__ import annotations

from pathlib import Path

from indexer.catalog import Catalog
from indexer.derived import DerivedIndexes
from indexer.keyword_index import KeywordOptions
from indexer.manifest import write_manifest
from indexer.schema import Moment
from retriever import RetrievalOptions

KEYWORDS_ONLY = RetrievalOptions(weights={"keyword": 1.0, "semantic": 0.0, "visual": 0.0})


def add_clip(catalog: Catalog, i: int, derived: DerivedIndexes | None = None) -> None:
    """A video with one moment, committed to the catalog (and to the derived indexes when given)."""
    moments = [Moment(0.0, 5.0, "speech", f"clip number {i} is about lava")]
    added = catalog.add_video(content_id=f"c{i}", path=f"/videos/clip_{i}.mp4", stat=None, info={"duration": 5.0},
                              keyframes=[], moments=moments, vectors={}, run_id=None)
    moments[0].id, moments[0].video_id = added.moment_ids[0], added.video_id
    if derived is not None:
        derived.apply(catalog.videos([added.video_id])[0], moments, {}, added.replaced_videos,
                      added.replaced_vectors)


def new_index(index_dir: Path, engine: str = "whoosh") -> None:
    """An empty index: a catalog with its manifest and derived indexes marked current."""
    with Catalog(index_dir) as catalog:
        write_manifest(catalog, {"spaces": {}})
        DerivedIndexes(catalog, keyword_options=KeywordOptions(engine)).rebuild()
