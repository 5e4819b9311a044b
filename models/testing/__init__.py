"""Tiny random-weight models of the real architectures, built offline, for tests.

``python -m models.testing.tiny OUTDIR`` writes one of every full-profile role and a
``videoqa.toml`` that points at them. Random weights exercise the real loading and
inference code; they say nothing about quality.
"""
