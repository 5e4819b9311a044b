"""Indexing: decode videos, find keyframes and speech, and write the catalog and derived indexes.

The read side (``indexer.schema``, ``indexer.catalog``, ``indexer.store``) is shared
with the retriever; the pipeline (``indexer.pipeline``) is used by the app only.
"""
