"""(ours) The label audit's costly part over a whole manifest: k-fold out-of-sample
probabilities of every audited image, its faces read in chunks into one small grey array.

Pure but for the reader the caller passes: ``read_batches(paths, size)`` yields
``(start, images)`` for consecutive chunks of ``paths`` (``store.iter_image_batches``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from fer_core.audit import labels as audit

ROW_COLUMNS = ("path", "split", "class", "label")
CHUNK = 1024  # images read at a time


def audit_probs(m: pd.DataFrame, cfg: audit.AuditConfig,
                read_batches: Callable[[list[str], int], Iterable[tuple[int, list]]], *,
                progress: Callable | None = None
                ) -> tuple[pd.DataFrame, np.ndarray, tuple[str, ...]]:
    """(the audited rows (``ROW_COLUMNS``), their (n, classes) out-of-sample probabilities,
    the classes in label order). ``progress(iterable, total=, desc=)`` wraps the reading."""
    rows = audit.audited_rows(m, cfg)
    paths = rows["path"].tolist()
    faces = np.zeros((len(rows), cfg.size, cfg.size), np.uint8)
    chunks = read_batches(paths, CHUNK)
    if progress is not None:
        chunks = progress(chunks, total=-(-len(paths) // CHUNK), desc="read")
    for s, images in chunks:
        faces[s:s + len(images)] = audit.grey_faces(images, cfg.size)
    classes = audit.classes_of(m)
    probs = audit.out_of_sample_probs(faces, rows["label"].to_numpy(), len(classes), cfg)
    return rows[list(ROW_COLUMNS)], probs, classes


def accuracy(rows: pd.DataFrame, probs: np.ndarray) -> float:
    """How often the out-of-sample argmax is the given label."""
    return float((probs.argmax(1) == rows["label"].to_numpy()).mean())
