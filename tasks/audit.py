"""Thin Prefect tasks for the dataset audit: near-duplicates (a stage of prepare), reviewed
relabels and drops (applied after ingest), and the k-fold label audit (`fer audit`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import task

from fer_core import store
from fer_core.audit import figures as audit_figures
from fer_core.audit import labels as audit
from fer_core.prepare import near_duplicates, review
from fer_core.runtime.progress import bar
from fer_core.store import Ref
from tasks.caching import result_dir, task_options
from tasks.prepare import MANIFEST, read_manifest

PAIRS = "pairs.parquet"


def _near_dir(a) -> Path:
    return result_dir(a["store_root"], "near_duplicates", [a["manifest"].sha256], a["cfg"],
                      [near_duplicates])


@task(name="near-duplicates", task_run_name="near-duplicates-{cfg.policy}",
      **task_options(_near_dir))
def near_duplicates_task(manifest: Ref, cfg: near_duplicates.NearDupConfig, root: str,
                         store_root: str) -> Ref:
    """The result folder holds the manifest (read_manifest works on it) and the pairs."""
    def make(out: Path) -> dict:
        m = read_manifest(manifest)
        rows = near_duplicates.hashed_rows(m)
        paths, subsets = rows["path"].tolist(), rows["subset"].to_numpy()
        probed = near_duplicates.probed(subsets, cfg)
        coarse = np.concatenate([np.zeros((0, len(near_duplicates.probes(cfg))), np.uint64), *(
            near_duplicates.coarse_hashes(images, cfg, probed=probed[s:s + len(images)])
            for s, images in _chunks(root, paths, cfg.chunk, "phash"))])
        cands = near_duplicates.candidates(coarse, subsets, cfg)
        # Second pass: the 256-bit hash of the candidates' images alone.
        wanted = near_duplicates.wanted_fine(cands, len(rows))
        need = [i for i, w in enumerate(wanted) if w]
        fine: list[dict] = [{} for _ in wanted]
        for s, images in _chunks(root, [paths[i] for i in need], cfg.chunk, "phash-256"):
            for i, hashes in zip(need[s:s + len(images)], near_duplicates.fine_hashes(
                    images, [wanted[i] for i in need[s:s + len(images)]], cfg), strict=True):
                fine[i] = hashes
        pairs = near_duplicates.with_paths(near_duplicates.confirm(cands, fine, cfg), rows)
        store.write_frame(out / PAIRS, pairs)
        store.write_frame(out / MANIFEST, near_duplicates.mark_near_duplicates(m, pairs, cfg))
        return {"images": len(rows), "candidates": len(cands), "pairs": len(pairs)}

    return store.run_stage(_near_dir(locals()), make)[0]


def _chunks(root: str, paths: list[str], size: int, desc: str):
    return bar(store.iter_image_batches(root, paths, size), total=-(-len(paths) // size),
               desc=desc)


def _review_dir(a) -> Path:
    # Keyed by the list's content, not where it lies.
    listed = store.file_sha256(a["cfg"].file)
    return result_dir(a["store_root"], "review", [a["manifest"].sha256, listed], None, [review])


@task(name="review", task_run_name="apply-review", **task_options(_review_dir))
def review_task(manifest: Ref, cfg: review.ReviewConfig, store_root: str) -> Ref:
    """The manifest with a person's relabels and drops (``cfg.file``) applied."""
    return store.run_stage(_review_dir(locals()), lambda out: _write_reviewed(out, manifest,
                                                                               cfg))[0]


def _write_reviewed(out: Path, manifest: Ref, cfg: review.ReviewConfig) -> dict:
    listed = store.read_csv(cfg.file, dtype=str, keep_default_na=False)
    m = review.apply_review(read_manifest(manifest), listed, Path(cfg.file).name)
    store.write_frame(out / MANIFEST, m)
    return {"rows": len(m), "listed": len(listed)}


CLOSEST = 16  # cross-split pairs shown in the figure


def near_duplicate_reports(m, near: Ref, root: str, rep: Path) -> dict[str, str]:
    """reports/near_duplicates.csv, its counts per split pair and per class (returned, for
    the report tables), and near_duplicates.png: the closest pairs across splits."""
    pairs = store.read_frame(Path(near.path) / PAIRS)
    table = near_duplicates.pair_table(m, pairs)
    store.write_csv(rep / "near_duplicates.csv", table)
    counts = {"near_duplicates_by_split": near_duplicates.split_counts(table),
              "near_duplicates_by_class": near_duplicates.class_counts(table)}
    for name, t in counts.items():
        store.write_csv(rep / f"{name}.csv", t)
    cross = table[table["split_a"] != table["split_b"]].head(CLOSEST)
    faces = [(store.read_image(root, a), store.read_image(root, b))
             for a, b in zip(cross["path_a"], cross["path_b"], strict=True)]
    captions = [f"{r.split_a} {r.class_a} | {r.split_b} {r.class_b}\nd={r.distance}"
                for r in cross.itertuples()]
    store.write_figure(rep / "near_duplicates.png", audit_figures.pair_grid(
        faces, captions, title=f"Closest near-duplicates across splits ({len(table)} pairs "
        f"in all, {int((table['split_a'] != table['split_b']).sum())} across splits)"))
    return {name: str(rep / f"{name}.csv") for name in counts}


# --- The label audit (`fer audit`) ---

PROBS, ROWS = "probs.npy", "rows.parquet"


def _probs_dir(a) -> Path:
    return result_dir(a["store_root"], "label_audit", [a["manifest"].sha256], a["cfg"], [audit])


@task(name="out-of-sample-probs", task_run_name="{cfg.folds}-fold-{cfg.model}",
      **task_options(_probs_dir))
def out_of_sample_task(manifest: Ref, cfg: audit.AuditConfig, root: str,
                       store_root: str) -> Ref:
    """k-fold out-of-sample probabilities of every audited image (the costly part, cached)."""
    def make(out: Path) -> dict:
        m = store.read_frame(manifest.path)
        rows = audit.audited_rows(m, cfg)
        faces = np.zeros((len(rows), cfg.size, cfg.size), np.uint8)
        for s, images in _chunks(root, rows["path"].tolist(), 1024, "read"):
            faces[s:s + len(images)] = audit.grey_faces(images, cfg.size)
        classes = audit.classes_of(m)
        probs = audit.out_of_sample_probs(faces, rows["label"].to_numpy(), len(classes), cfg)
        store.write_array(out / PROBS, probs)
        store.write_frame(out / ROWS, rows[["path", "split", "class", "label"]])
        return {"images": len(rows), "classes": list(classes),
                "accuracy": float((probs.argmax(1) == rows["label"].to_numpy()).mean())}

    return store.run_stage(_probs_dir(locals()), make)[0]


@task(name="label-issues", task_run_name="label-issues", **task_options(None))
def label_issues_task(probs: Ref, cfg: audit.AuditConfig, root: str, out_dir: str,
                      review_action: str | None = None) -> dict:
    """reports/label_issues.csv and label_issues.png (cleanlab's ranking), and with
    ``review_action`` the review file a person edits before `fer prepare` applies it."""
    rows = store.read_frame(Path(probs.path) / ROWS)
    p = store.read_array(Path(probs.path) / PROBS, mmap=False)
    meta = store.result_meta(probs)
    classes = tuple(meta["classes"])
    labels = rows["label"].to_numpy()
    issues = audit.issue_table(rows, p, labels, classes, audit.ranked_issues(p, labels))
    rep = Path(out_dir) / "reports"
    written = {"label_issues": str(store.write_csv(rep / "label_issues.csv", issues).path)}
    top = {c: issues[issues["given_label"] == c].head(cfg.top_per_class) for c in classes}
    faces = {c: [(store.read_image(root, r.path), f"-> {r.suggested_label}\n"
                  f"{r.self_confidence:.2f}") for r in t.itertuples()] for c, t in top.items()}
    store.write_figure(rep / "label_issues.png", audit_figures.class_rows(
        faces, per_row=cfg.top_per_class, title=f"Likeliest label errors per given class "
        f"({len(issues)} of {len(rows)} flagged; -> suggested label, self-confidence)"))
    written["figure"] = str(rep / "label_issues.png")
    if review_action:
        listed = audit.review_list(issues, review_action)
        written["review"] = str(store.write_csv(rep / "label_review.csv", listed).path)
    return {"reports": written, "audited": len(rows), "flagged": len(issues),
            "accuracy": meta["accuracy"], "per_class": issues["given_label"].value_counts()
            .reindex(classes, fill_value=0).astype(int).to_dict()}
