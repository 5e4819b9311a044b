"""Indexing: decode videos, find keyframes and speech, and write the catalog and derived indexes.

The read side (``indexer.schema``, ``indexer.catalog``, ``indexer.manifest``,
``indexer.derived`` with ``indexer.keyword_index`` and ``indexer.vector_index``) is shared
with the retriever; the extraction (``indexer.pipeline``, ``indexer.distributed``), the
writer (``indexer.writer``) and the writer lock (``indexer.locks``) are used by the app
only: only the writer builds or repairs an index.
"""
