"""`alertlab.client`: the Python client of the AlertLab API, for notebooks and laptops."""
