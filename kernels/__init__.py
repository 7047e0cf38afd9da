"""The AlertLab kernelspec."""
