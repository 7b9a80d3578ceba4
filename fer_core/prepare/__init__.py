"""Data preparation, sections 4-5 of the paper: labelled image folders -> saved sets.

Holds the manifest (one row per input file), ingest, review, SHA-1 duplicates, near-duplicates,
the split, sharpness per split, face detection and alignment, resizing, augmentation, test
subsets, one-hot labels, the paper's Tables and Figures, and the preparation config.

May import: fer_core.config, fer_core.store, fer_core.runtime, numpy, pandas, OpenCV,
scikit-image, scikit-learn, imagehash, torch and facenet-pytorch (MTCNN). Never Prefect.
"""
