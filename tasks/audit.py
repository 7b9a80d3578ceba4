"""Thin Prefect tasks for the dataset audit: near-duplicates (a stage of prepare), reviewed
relabels and drops (applied after ingest), and the k-fold label audit (`fer audit`)."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from fer_core import store
from fer_core.audit import labels as audit
from fer_core.audit import out_of_sample
from fer_core.audit import reports as audit_reports
from fer_core.prepare import hamming, near_duplicates, near_search, phash, review
from fer_core.runtime.progress import bar
from fer_core.store import Ref, stage_files
from fer_core.store.keys import stage_key
from fer_core.store.stage_files import PAIRS, read_manifest
from tasks.caching import result_dir, task_options


def _near_dir(a) -> Path:
    return result_dir(a["store_root"], "near_duplicates", [a["manifest"].sha256], a["cfg"],
                      [near_duplicates, hamming, near_search, stage_files])


def _hashes_key(cfg: near_duplicates.NearDupConfig) -> str:
    """What an image's near-duplicate hashes depend on besides its content: the probes
    (their moves and scales) and the hashing code."""
    return stage_key("near_duplicates/hashes", inputs=[],
                     config={"shift": cfg.shift, "scales": list(cfg.scales)},
                     modules=[near_duplicates, phash])


def _search_key(cfg: near_duplicates.NearDupConfig) -> str:
    """What a search's pairs depend on besides its images: every setting but the policy
    and the chunk size, and the code."""
    return stage_key("near_duplicates/search", inputs=[],
                     config=cfg.model_dump(mode="json", exclude={"policy", "chunk"}),
                     modules=[near_duplicates, hamming, near_search, phash])


@task(name="near-duplicates", task_run_name="near-duplicates-{cfg.policy}",
      **task_options(_near_dir))
def near_duplicates_task(manifest: Ref, cfg: near_duplicates.NearDupConfig, root: str,
                         store_root: str) -> Ref:
    """The result folder holds the manifest (read_manifest works on it) and the pairs."""
    def make(out: Path) -> dict:
        # Each image's hashes are kept in the store by its content, and the last search's
        # pairs too: a rerun after one edit hashes that image alone and searches only its
        # pairs, keeping those of two unchanged images.
        kept, searched = _hashes_key(cfg), _search_key(cfg)
        m = read_manifest(manifest)
        pairs, marked, meta, new = near_search.search_known(
            m, cfg, lambda paths, size: store.iter_image_batches(root, paths, size),
            progress=bar, known=stage_files.read_hashes(store_root, kept),
            last=stage_files.read_last_search(store_root, searched))
        stage_files.add_hashes(store_root, kept, new)
        stage_files.write_last_search(store_root, searched, near_search.searched_rows(m), pairs)
        get_run_logger().info("near-duplicates: %d of %d images hashed now (%d at 256 bits), "
                              "the rest kept from before; pairs searched for %d", meta["hashed"],
                              meta["images"], meta["hashed_fine"], meta["searched"])
        store.write_frame(out / PAIRS, pairs)
        stage_files.write_manifest(out, marked)
        return meta

    return store.run_stage(_near_dir(locals()), make)[0]


def _review_dir(a) -> Path:
    # Keyed by the list's content, not where it lies.
    listed = store.file_sha256(a["cfg"].file)
    return result_dir(a["store_root"], "review", [a["manifest"].sha256, listed], None,
                      [review, stage_files])


@task(name="review", task_run_name="review", **task_options(_review_dir))
def review_task(manifest: Ref, cfg: review.ReviewConfig, store_root: str) -> Ref:
    """The manifest with a person's relabels and drops (``cfg.file``) applied."""
    def make(out: Path) -> dict:
        listed = store.read_csv(cfg.file, dtype=str, keep_default_na=False)
        m = review.apply_review(read_manifest(manifest), listed, Path(cfg.file).name)
        return {**stage_files.write_manifest(out, m), "listed": len(listed)}

    return store.run_stage(_review_dir(locals()), make)[0]


# --- The label audit (`fer audit`) ---

PROBS, ROWS = "probs.npy", "rows.parquet"


def _probs_dir(a) -> Path:
    return result_dir(a["store_root"], "label_audit", [a["manifest"].sha256], a["cfg"],
                      [audit, out_of_sample])


@task(name="out-of-sample-probs",
      task_run_name="out-of-sample-probs-{cfg.folds}-fold-{cfg.model}",
      **task_options(_probs_dir))
def out_of_sample_task(manifest: Ref, cfg: audit.AuditConfig, root: str,
                       store_root: str) -> Ref:
    """k-fold out-of-sample probabilities of every audited image (the costly part, cached)."""
    def make(out: Path) -> dict:
        rows, probs, classes = out_of_sample.audit_probs(
            store.read_frame(manifest.path), cfg,
            lambda paths, size: store.iter_image_batches(root, paths, size), progress=bar)
        store.write_array(out / PROBS, probs)
        store.write_frame(out / ROWS, rows)
        return {"images": len(rows), "classes": list(classes),
                "accuracy": out_of_sample.accuracy(rows, probs)}

    return store.run_stage(_probs_dir(locals()), make)[0]


@task(name="label-issues", task_run_name="label-issues", **task_options(None))
def label_issues_task(probs: Ref, cfg: audit.AuditConfig, root: str, out_dir: str,
                      review_action: str | None = None) -> dict:
    """reports/label_issues.csv and label_issues.png (cleanlab's ranking), and with
    ``review_action`` the review file a person edits before `fer prepare` applies it."""
    meta = store.result_meta(probs)
    files, summary = audit_reports.label_issue_files(
        store.read_frame(Path(probs.path) / ROWS),
        store.read_array(Path(probs.path) / PROBS, mmap=False), tuple(meta["classes"]), cfg,
        lambda path: store.read_image(root, path), review_action)
    rep = Path(out_dir) / "reports"
    stage_files.write_files(rep, files)
    return {"reports": {audit_reports.ISSUE_FILES[n]: str(rep / n) for n in files},
            "audited": summary["audited"], "flagged": summary["flagged"],
            "accuracy": meta["accuracy"], "per_class": summary["per_class"]}
