"""Baogong (保供): emergency supply-assurance monitoring for 15-minute living circles.

This package holds what the four pipeline packages (`ingest`, `streams`,
`alerts`, `schema`) share: the one settings object, the `baogong` CLI, the
local service scripts and the demo.
"""
