"""Section 4, ingestion: one manifest row per input file, kept or rejected with a reason.

Layouts understood:
- ``DATA/<class>/*``                 (the paper's; everything is the ``train`` subset)
- ``DATA/{train,test}/<class>/*``    (FER2013 / RAF-DB style; ``test`` stays whole, held out)
- ``DATA/fer2013.csv`` or the CSV itself (FER2013's original release, ``pixels`` column)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from fer_core import MissingInput, UsageError, store
from fer_core.config.ingest import (  # noqa: F401  (its config and presets, re-exported)
    CLASS_MAPS,
    CLASS_SETS,
    IMAGE_EXTENSIONS,
    PAPER_CLASSES,
    IngestConfig,
    resolve_class_map,
    resolve_classes,
)
from fer_core.prepare import labels
from fer_core.prepare.manifest import REJECTED, new_rows
from fer_core.prepare.quality import sharpness

SUBSETS = ("train", "test")


def ingest(cfg: IngestConfig, *, progress: Callable | None = None) -> pd.DataFrame:
    """Walk the data folder and account for every file in a manifest, sorted by path."""
    return ingest_files(cfg, progress=progress)[0]


# What a file's inspection is reused by: the same path, inode, size, mtime and ctime (ctime
# changes with any write and cannot be set back by a user).
FILE_STAT = ("ino", "size", "mtime_ns", "ctime_ns")
FILE_COLUMNS = ("path", *FILE_STAT, "inspected")


def ingest_files(cfg: IngestConfig, *, progress: Callable | None = None,
                 previous: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The manifest (as ``ingest``) and the files table: each inspected file's path, stat
    and inspection (JSON). ``previous``: an earlier files table of the same folder (and the
    same ingest code and ``min_size``): a file whose stat is unchanged is not read again,
    its inspection (SHA-1, size, decode check, sharpness) is taken from there."""
    root = Path(cfg.root)
    if not root.exists():
        raise MissingInput(f"{root}: data folder does not exist")
    csv_path = _csv_source(root)
    files: list[dict] = []
    if cfg.labels is not None:
        rows = _labelled_rows(root, cfg, progress, _known(previous), files)
    elif csv_path is not None:
        rows = _csv_rows(root, csv_path, cfg)
    else:
        rows = _folder_rows(root, cfg, progress, _known(previous), files)
    if not rows:
        raise UsageError(f"{root}: no class folders or files found")
    df = new_rows(rows)
    table = pd.DataFrame(files, columns=list(FILE_COLUMNS)).sort_values("path", kind="stable")
    return (df.sort_values("path", kind="stable").reset_index(drop=True),
            table.reset_index(drop=True))


def _known(previous: pd.DataFrame | None) -> dict[str, tuple]:
    if previous is None or previous.empty:
        return {}
    stats = zip(*(previous[c].tolist() for c in FILE_STAT), strict=True)
    return {p: (tuple(st), inspected) for p, st, inspected in
            zip(previous["path"].tolist(), stats, previous["inspected"].tolist(), strict=True)}


def _csv_source(root: Path) -> Path | None:
    if root.is_file() and root.suffix.lower() == ".csv":
        return root
    candidate = root / "fer2013.csv"
    return candidate if candidate.is_file() else None


def _map_class(name: str, cfg: IngestConfig) -> str:
    return cfg.class_map.get(name, name)


def _excluded(cls: str, cfg: IngestConfig) -> str:
    if cfg.classes is not None and cls not in cfg.classes:
        return f"class '{cls}' not selected"
    return ""


def _layout(root: Path) -> list[tuple[str, Path]]:
    """(subset, folder) pairs: the folders whose sub-folders are class folders."""
    subdirs = {p.name for p in root.iterdir() if p.is_dir()}
    if subdirs & set(SUBSETS):
        return [(s, root / s) for s in SUBSETS if s in subdirs]
    return [("train", root)]


def _folder_rows(root: Path, cfg: IngestConfig, progress, known: dict[str, tuple],
                 files: list[dict]) -> list[dict]:
    rows: list[dict] = []
    todo: list[dict] = []
    layout = _layout(root)
    layout_dirs = {d for _, d in layout}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.parent in layout_dirs or path.parent == root:
            rows.append(_rejected(rel, "not inside a class folder"))
            continue
        subset, class_dir = _locate(path, layout)
        if class_dir is None:
            rows.append(_rejected(rel, "not in a train/ or test/ class folder"))
            continue
        cls = _map_class(class_dir.name, cfg)
        row = {"path": rel, "subset": subset, "class": cls}
        if path.suffix.lower() not in cfg.extensions:
            rows.append(_rejected(rel, f"unsupported file type '{path.suffix or path.name}'",
                                  subset=subset, cls=cls))
        elif reason := _excluded(cls, cfg):
            rows.append({**row, "status": REJECTED, "reason": reason})
        else:
            st = path.stat()
            todo.append({**row, "_stat": (st.st_ino, st.st_size, st.st_mtime_ns,
                                          st.st_ctime_ns)})
    for subset, base in layout:
        for d in sorted(p for p in base.iterdir() if p.is_dir()):
            if not any(f.is_file() for f in d.rglob("*")):
                rows.append(_rejected(d.relative_to(root).as_posix() + "/", "empty class folder",
                                      subset=subset, cls=_map_class(d.name, cfg)))
    rows.extend(_inspect_all(root, todo, cfg, progress, known, files))
    return rows


def _labelled_rows(root: Path, cfg: IngestConfig, progress, known: dict[str, tuple],
                   files: list[dict]) -> list[dict]:
    """The rows of a labels file (fer_core.prepare.labels), each listed file inspected."""
    text = store.read_text(cfg.labels.file)
    present = [p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file()]
    images = [p for p in present if Path(p).suffix.lower() in cfg.extensions]
    rows, todo = labels.labelled_rows(text, cfg, present, images)
    for row in todo:
        st = (root / store.split_box(row["path"])[0]).stat()
        row["_stat"] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return rows + _inspect_all(root, todo, cfg, progress, known, files)


def _locate(path: Path, layout: list[tuple[str, Path]]) -> tuple[str, Path | None]:
    """The subset and class folder of a file: the first folder below a layout folder."""
    for subset, base in layout:
        try:
            parts = path.relative_to(base).parts
        except ValueError:
            continue
        if len(parts) >= 2:
            return subset, base / parts[0]
    return "", None


def _inspect_all(root: Path, todo: list[dict], cfg: IngestConfig, progress,
                 known: dict[str, tuple], files: list[dict]) -> list[dict]:
    inspected: dict[str, str] = {}
    for row in todo:
        was = known.get(row["path"])
        if was is not None and was[0] == row["_stat"]:
            inspected[row["path"]] = was[1]
    fresh = [row for row in todo if row["path"] not in inspected]

    def one(row: dict) -> str:
        full = root / store.split_box(row["path"])[0]
        return json.dumps(_inspect(full, row["path"], cfg), sort_keys=True)

    # OpenCV decoding and hashlib both release the GIL: threads use both cores.
    with ThreadPoolExecutor(max_workers=max(1, cfg.workers)) as pool:
        results = pool.map(one, fresh)
        if progress is not None:
            results = progress(results, total=len(fresh), desc="ingest")
        inspected.update(zip((r["path"] for r in fresh), results, strict=True))
    rows = []
    for row in todo:
        st = row.pop("_stat")
        files.append({"path": row["path"], **dict(zip(FILE_STAT, st, strict=True)),
                      "inspected": inspected[row["path"]]})
        rows.append({**row, **json.loads(inspected[row["path"]])})
    return rows


def _inspect(full: Path, rel: str, cfg: IngestConfig) -> dict:
    try:
        data = store.read_file_bytes(full)
        img = store.decode_image(data, rel, ext=full.suffix, max_pixels=cfg.max_pixels)
        box = store.split_box(rel)[1]
        if box is not None:  # a face box: its crop is the image (its bytes key the box too)
            img, data = store.crop_box(img, box, rel), data + rel.encode()
    except store.BadImage as e:
        return {"status": REJECTED, "reason": e.reason}
    h, w = img.shape[:2]
    out = {"sha1": hashlib.sha1(data).hexdigest(), "width": w, "height": h,
           "sharpness": sharpness(img)}
    if min(h, w) < cfg.min_size:
        return {**out, "status": REJECTED,
                "reason": f"too small: {w}x{h} < {cfg.min_size}x{cfg.min_size} minimum"}
    return out


def _rejected(rel: str, reason: str, *, subset: str = "", cls: str = "") -> dict:
    return {"path": rel, "subset": subset, "class": cls, "status": REJECTED, "reason": reason}


def _csv_rows(root: Path, csv_path: Path, cfg: IngestConfig) -> list[dict]:
    df = store.read_fer2013_csv(csv_path)
    rel = csv_path.name if root.is_file() else csv_path.relative_to(root).as_posix()
    usage = df["Usage"] if "Usage" in df.columns else pd.Series("Training", index=df.index)
    rows = []
    for i, (code, pixels, use) in enumerate(zip(df["emotion"], df["pixels"], usage, strict=True)):
        path = f"{rel}{store.CSV_ROW_SEP}{i}"
        subset = "train" if use == "Training" else "test"
        try:
            name = store.FER2013_CSV_CLASSES[int(code)]
        except (ValueError, IndexError):
            rows.append(_rejected(path, f"unknown emotion code {code!r}", subset=subset))
            continue
        cls = _map_class(name, cfg)
        row = {"path": path, "subset": subset, "class": cls}
        if reason := _excluded(cls, cfg):
            rows.append({**row, "status": REJECTED, "reason": reason})
            continue
        try:
            data = store.csv_pixels_bytes(str(pixels))
        except ValueError as e:
            rows.append({**row, "status": REJECTED, "reason": f"bad pixels: {e}"})
            continue
        side = int(round(len(data) ** 0.5))
        row.update(sha1=hashlib.sha1(data).hexdigest(), width=side, height=side)
        if side * side != len(data):
            row.update(status=REJECTED, reason=f"{len(data)} pixels is not a square image")
            rows.append(row)
            continue
        row["sharpness"] = sharpness(np.frombuffer(data, np.uint8).reshape(side, side))
        if side < cfg.min_size:
            row.update(status=REJECTED, reason=f"too small: {side}x{side}")
        rows.append(row)
    return rows


def summarize_rejections(manifest: pd.DataFrame) -> list[str]:
    """One line per rejection reason, with its count and an example file."""
    rej = manifest[manifest["status"] == REJECTED]
    lines = []
    for reason, group in rej.groupby(_reason_kind(rej["reason"]), sort=True):
        lines.append(f"rejected {len(group)} file(s): {reason} (e.g. {group['path'].iloc[0]}: "
                     f"{group['reason'].iloc[0]})")
    return lines


def _reason_kind(reasons: pd.Series) -> pd.Series:
    # "too small: 8x8 < 16x16" and "too small: 4x4 < 16x16" are one kind of reason.
    return reasons.str.split(":").str[0].str.replace(r"'.*'", "'...'", regex=True)


def data_root(path: str | os.PathLike) -> str:
    p = Path(path)
    return str(p.parent if p.is_file() else p)


def reuse_key(cfg: IngestConfig) -> str:
    """What an earlier ingest's per-file inspections (its files table) are valid for: the
    same folder, the same ingest code (its whole closure), the same minimum size and
    pixel limit."""
    from fer_core.store.keys import stage_key

    return stage_key("ingest-files", inputs=[str(Path(cfg.root).resolve())],
                     config={"min_size": cfg.min_size, "max_pixels": cfg.max_pixels},
                     modules=[__name__])
