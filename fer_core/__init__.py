"""fer_core: the pure library of the pipeline (never imports Prefect).

Subpackages by concern, each of whose ``__init__`` says what it holds and may import:

- ``config``   every config schema, typed and frozen (pydantic; no torch, no stage code)
- ``store``    all file I/O: atomic files, arrays, images, sealed stage results, content keys
- ``runtime``  the machine: device choice, threads, seeding, autocast, progress bars
- ``prepare``  the paper's sections 4-5: manifest, duplicates, split, align, resize, augment
- ``datasets`` data made here: the embedded demo set, near-copies, faces planted in photos
- ``models``   the model registry, checkpoints, the shipped weights, export
- ``train``    the training config and loop
- ``evaluate`` scoring a model on saved sets, metrics and report figures
- ``infer``    faces in new photos, folders and videos -> predictions
- ``audit``    (ours) likely label errors for a person to review

Layers, lowest first: config, store, runtime -> prepare, datasets, models -> train, evaluate ->
infer, audit. A package imports only from its own layer's lower neighbours; no cycles
(tests/fer_core/test_layout.py).
"""
