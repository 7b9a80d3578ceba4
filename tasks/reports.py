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
    """The paper's tables and figures in the Prefect UI, each an artifact named after it.

    Figures are inlined, downscaled (``store.read_thumbnail``): an artifact travels in a
    Prefect event, which the server refuses over 1.5 MB, and a browser does not open the
    UI's ``file://`` links. Each description says where the full CSV or PNG is."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    for name, path in sorted(reports.items(), key=lambda kv: artifact_key(kv[0])):
        table = store.read_csv(path, dtype=str, keep_default_na=False)
        create_table_artifact(table.to_dict("records"), key=artifact_key(name),
                              description=f"**{title_of(name)}**. CSV: `{path}`")
    rep = Path(out_dir) / "reports"
    for png in [*sorted(rep.glob("fig*.png")), rep / "near_duplicates.png"]:
        if png.is_file():
            create_markdown_artifact(figures_markdown(title_of(png.stem), [png]),
                                     key=artifact_key(png.stem, "figure"),
                                     description=f"**{title_of(png.stem)}**. PNG: `{png}`")
    create_markdown_artifact(
        f"# Run folder\n\n`{Path(out_dir).resolve()}`: sets/ (the saved sets), reports/ "
        "(Tables 1-5 as CSV, Figures 2-5 as PNG), manifest.parquet (one row per input "
        "file), store/ (cached stage results)", key="run-folder",
        description=f"the run folder `{Path(out_dir).resolve()}` on the machine that ran it")


def title_of(name: str) -> str:
    return prepare_reports.TITLES.get(name, name.replace("_", " "))


def artifact_key(name: str, kind: str = "table") -> str:
    """``table-1-distribution``, ``figure-2-distribution``, ``table-sharpness``: the paper's
    number first, so the UI's list sorts as the paper does. Prefect artifact keys allow
    lowercase letters, digits and dashes only."""
    title = title_of(name)
    number = title.split(":")[0].split()[-1] if title[:6] in ("Table ", "Figure") else ""
    bare = name.split("_", 1)[1] if name.startswith("fig") else name
    return "-".join(p for p in (kind, number, bare.replace("_", "-")) if p)


def figures_markdown(title: str, pngs: list[Path]) -> str:
    """Markdown with the figures inlined, downscaled, so the Prefect UI shows them without
    file access and each artifact stays well under Prefect's event size limit."""
    import base64

    md = [f"# {title}", ""]
    for png in pngs:
        data, mime = store.read_thumbnail(png)
        md += [f"## {png.stem}" if len(pngs) > 1 else "",
               f"![{png.stem}](data:{mime};base64,{base64.b64encode(data).decode()})",
               f"*Full size: `{png}`*", ""]
    return "\n".join(md)
