"""Where each section of a preparation config file is defined, by name, so that a command
line can check one section by importing its model alone (a bad command fails before the
other sections, or torch, load). fer_core.config.prepare.SECTIONS holds the same models
(tested)."""

from __future__ import annotations

import importlib

# section name -> (module of fer_core.config, model)
SECTION_MODELS = {
    "ingest": ("ingest", "IngestConfig"), "review": ("review", "ReviewConfig"),
    "dedup": ("duplicates", "DedupConfig"),
    "near_duplicates": ("near_duplicates", "NearDupConfig"), "split": ("split", "SplitConfig"),
    "quality": ("quality", "QualityConfig"), "align": ("align", "AlignConfig"),
    "resize": ("resize", "ResizeConfig"), "augment": ("augment", "AugmentConfig")}
SUBSETS = "subsets"  # the file's other key: {name: list file}


def section_model(name: str):
    module, model = SECTION_MODELS[name]
    return getattr(importlib.import_module(f"fer_core.config.{module}"), model)
