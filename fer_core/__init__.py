"""fer_core: the pure library of the pipeline (never imports Prefect).

Subpackages by concern, each of whose ``__init__`` says what it holds and may import:

- ``config``   every config schema, typed and frozen (pydantic; no torch, no stage code)
- ``store``    all file I/O: atomic files, arrays, images and their headers, stage results,
               content keys
- ``runtime``  the machine: device choice, threads, seeding, autocast, progress bars
- ``prepare``  the paper's sections 4-5: manifest, duplicates, split, align, resize, augment
- ``models``   the model registry, checkpoints and their face spec, shipped weights, export
- ``datasets`` data made here: the embedded demo set, near-copies, faces planted in photos
- ``evaluate`` scoring a model on saved sets, metrics and report figures
- ``audit``    (ours) likely label errors for a person to review
- ``train``    the training loop, optimiser and schedule
- ``infer``    the face pipeline of every door: photos, folders, videos -> predictions
- ``serve``    the HTTP service behind ``fer serve``

Layers, lowest first; a package imports only from lower layers (tests/fer_core/test_layout.py,
which also fails on any import cycle):

    config, store, runtime -> prepare, models -> datasets, evaluate, audit -> train, infer
    -> serve
"""


class UsageError(ValueError):
    """What the user can fix: a bad data folder, an unknown class, a bad checkpoint or
    config, a failed alignment batch (named). ``fer`` answers it with one line and exit
    status 2; any other exception is a bug (exit 1, with its traceback)."""


class MissingInput(UsageError, FileNotFoundError):
    """A file or folder the user named (or one a named run should hold) that is not there."""
