"""Data made here, offline: the embedded demo dataset (drawn and photographic faces),
made near-copies of a face for checking the near-duplicate search, and dataset faces planted
in larger photos at a known place for checking prediction's crop (``planted``).

May import: fer_core.config, fer_core.prepare (class names), fer_core.store, numpy, OpenCV,
scikit-image.
"""
