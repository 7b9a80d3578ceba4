"""Data made here, offline: the embedded demo dataset (drawn and photographic faces) and
made near-copies of a face for checking the near-duplicate search.

May import: fer_core.prepare (class names), fer_core.store, numpy, OpenCV, scikit-image.
"""
