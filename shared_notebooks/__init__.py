"""Notebooks that seed the shared gallery."""
