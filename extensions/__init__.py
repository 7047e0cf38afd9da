"""Jupyter server extensions that AlertLab adds to every user server."""
