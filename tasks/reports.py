"""The report task: the paper's Tables 1-5 as CSV and Figures 2-5 as PNG, under RUN_DIR/reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import task

from fer_core import store
from fer_core.prepare import align, augment, distribution, duplicates, figures, quality, split
from fer_core.prepare.manifest import KEPT
from fer_core.store import Ref
from tasks.caching import result_dir, task_options
from tasks.prepare import read_manifest, read_resized


def _reports_dir(a) -> Path:
    near = a.get("near")
    inputs = [a["manifest"].sha256, a["resized"].sha256, a["augmented"].sha256, *a["classes"],
              near.sha256 if near is not None else "no-near-duplicates"]
    store_root = a.get("store_root") or str(Path(a["out_dir"]) / "store")
    return result_dir(store_root, "reports", inputs, None,
                      [align, augment, distribution, duplicates, figures, quality, split,
                       "near_duplicates", "audit_figures"])


@task(name="reports", task_run_name="reports", **task_options(None))
def reports_task(manifest: Ref, resized: Ref, augmented: Ref, classes: tuple[str, ...],
                 root: str, out_dir: str, near: Ref | None = None,
                 store_root: str | None = None) -> dict[str, str]:
    """The reports are a stage result like the others (keyed on what they are made of),
    published into RUN_DIR/reports (and RUN_DIR/manifest.parquet) without a copy on every
    run: an unchanged rerun draws no figure again."""
    def make(out: Path) -> dict:
        return {"tables": sorted(_write_reports(manifest, resized, augmented, classes, root,
                                                out / "reports", near))}

    saved, _ = store.run_stage(_reports_dir(locals()), make)
    for path in sorted(Path(saved.path).rglob("*")):
        rel = path.relative_to(saved.path)
        if path.is_file() and rel.name != store.DONE:
            store.publish(path, Path(out_dir) / rel)
    rep = Path(out_dir) / "reports"
    return {name: str(rep / f"{name}.csv") for name in store.result_meta(saved)["tables"]}


def _write_reports(manifest: Ref, resized: Ref, augmented: Ref, classes: tuple[str, ...],
                   root: str, rep: Path, near: Ref | None) -> list[str]:
    m = read_manifest(manifest)
    index = store.read_frame(Path(resized.path) / "index.parquet")
    plan = store.read_frame(Path(augmented.path) / "plan.parquet")
    before = index.loc[index["split"] == "train", "label"].to_numpy()
    dist = distribution.class_distribution(m)
    aug = augment.augmentation_table(before, plan, classes)
    tables = {"distribution": dist, "split": split.split_table(m, classes),
              "alignment": align.alignment_table(m, classes), "augmentation": aug,
              "sharpness": quality.sharpness_table(m),
              # (ours) which identical files were labelled differently and what was kept
              "label_conflicts": duplicates.conflict_table(m)}
    for name, table in tables.items():
        store.write_csv(rep / f"{name}.csv", table)
    per_class = dist[dist["class"] != "Total"]
    store.write_figure(rep / "fig2_distribution.png", figures.histogram(
        dict(zip(per_class["class"], per_class["before_dedup"], strict=True)),
        title="Original data distribution (Figure 2)"))
    after = aug[aug["class"] != "Total"]
    store.write_figure(rep / "fig5_augmented_distribution.png", figures.histogram(
        dict(zip(after["class"], after["after"], strict=True)),
        title="Augmented training distribution (Figure 5)"))
    _examples(m, index, resized, root, rep)
    store.write_frame(rep.parent / "manifest.parquet", m)
    written = list(tables)
    if near is not None:  # (ours) the near-duplicate stage's pairs, by the final split
        from tasks.audit import near_duplicate_reports

        written += list(near_duplicate_reports(m, near, root, rep))
    return written


def _examples(m, index, resized: Ref, root: str, rep: Path) -> None:
    """Figure 3 (an input face and its pre-processed version) and Figure 4 (its noisy copies)."""
    live = m[(m["status"] == KEPT) & (m["split"] != "")]
    live = live[live["split"] == "train"] if (live["split"] == "train").any() else live
    pick = live[live["aligned"]] if live["aligned"].any() else live
    if pick.empty:
        return
    path = pick["path"].iloc[0]
    face = read_resized(resized, index, np.flatnonzero(index["path"].to_numpy() == path)[:1])[0]
    store.write_figure(rep / "fig3_preprocessed.png", figures.example_faces(
        [store.read_image(root, path), face], ["input", "aligned, 96x96, /255"],
        title=f"A pre-processed image (Figure 3): {path}"))
    noisy = [augment.add_noise(face, kind, seed=0) for kind in augment.NOISES]
    store.write_figure(rep / "fig4_augmented.png", figures.example_faces(
        [face, *noisy], ["pre-processed", *augment.NOISES],
        title="Augmented images (Figure 4)"))


def publish_artifacts(reports: dict[str, str], out_dir: str) -> None:
    """The report tables, the histograms and a link to the run folder, in the Prefect UI."""
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    for name, path in reports.items():
        table = store.read_csv(path, dtype=str, keep_default_na=False)
        # Prefect artifact keys allow lowercase letters, digits and dashes only.
        create_table_artifact(table.to_dict("records"), key=f"table-{name.replace('_', '-')}",
                              description=f"{name}.csv ({Path(path).parent})")
    figs = sorted((Path(out_dir) / "reports").glob("fig*.png"))
    create_markdown_artifact(figures_markdown(f"Preparation of `{out_dir}`", figs),
                             key="prepare-figures",
                             description="Figures 2-5 of the paper for this run")
    grid = Path(out_dir) / "reports" / "near_duplicates.png"
    if grid.is_file():
        create_markdown_artifact(figures_markdown(f"Near-duplicates in `{out_dir}`", [grid]),
                                 key="near-duplicates",
                                 description="the closest near-duplicate pairs across splits")
    create_link_artifact(Path(out_dir).resolve().as_uri(), link_text=str(out_dir),
                         key="run-folder", description="the run folder: sets, reports, manifest")


def figures_markdown(title: str, pngs: list[Path]) -> str:
    """Markdown with the PNGs inlined, so the Prefect UI shows them without file access."""
    import base64

    md = [f"# {title}", ""]
    for png in pngs:
        data = base64.b64encode(store.read_bytes(png)).decode()
        md += [f"## {png.stem}", f"![{png.stem}](data:image/png;base64,{data})", ""]
    return "\n".join(md)
