"""The report task: the paper's Tables 1-5 as CSV and Figures 2-5 as PNG, under RUN_DIR/reports."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from fer_core import store
from fer_core.audit import reports as audit_reports
from fer_core.prepare import align, augment, distribution, duplicates, figures, quality, split
from fer_core.prepare import reports as prepare_reports
from fer_core.store import Ref, stage_files
from tasks.caching import result_dir, task_options


def _reports_dir(a) -> Path:
    near = a.get("near")
    inputs = [a["manifest"].sha256, a["resized"].sha256, a["augmented"].sha256, *a["classes"],
              near.sha256 if near is not None else "no-near-duplicates"]
    store_root = a.get("store_root") or str(Path(a["out_dir"]) / "store")
    return result_dir(store_root, "reports", inputs, None,
                      [align, augment, distribution, duplicates, figures, quality, split,
                       prepare_reports, audit_reports, stage_files])


@task(name="reports", task_run_name="reports", **task_options(None))
def reports_task(manifest: Ref, resized: Ref, augmented: Ref, classes: tuple[str, ...],
                 root: str, out_dir: str, near: Ref | None = None,
                 store_root: str | None = None) -> dict[str, str]:
    """The reports are a stage result like the others (keyed on what they are made of),
    published into RUN_DIR/reports (and RUN_DIR/manifest.parquet) as copies on every
    run: an unchanged rerun draws no figure again."""
    def make(out: Path) -> dict:
        m = stage_files.read_manifest(manifest)
        index = stage_files.read_table(resized, stage_files.INDEX)
        files, tables = prepare_reports.report_files(
            m, index, stage_files.read_table(augmented, stage_files.PLAN), classes,
            lambda path: store.read_image(root, path),
            lambda positions: stage_files.read_resized(resized, index, positions))
        if near is not None:  # (ours) the near-duplicate stage's pairs, by the final split
            pairs = stage_files.read_table(near, stage_files.PAIRS)
            near_files = audit_reports.near_duplicate_files(
                m, pairs, lambda path: store.read_image(root, path))
            files |= {f"{prepare_reports.REPORTS}/{n}": f for n, f in near_files.items()}
            tables += list(audit_reports.NEAR_TABLES)
        stage_files.write_files(out, files)
        return {"tables": sorted(tables)}

    saved, _ = store.run_stage(_reports_dir(locals()), make)
    stage_files.publish_result(saved, out_dir)
    rep = Path(out_dir) / "reports"
    return {name: str(rep / f"{name}.csv") for name in store.result_meta(saved)["tables"]}


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
