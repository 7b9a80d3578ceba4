"""The preparation config: one section per stage (sections 4-5 of the paper), and the
sections a flow run may set (``PrepareOptions``).

A config file (fer_core.prepare.config.build_config) has a mapping per section of
``SECTIONS`` and ``subsets: {NAME: LIST_FILE}`` (LIST_FILE relative to the data folder).
"""

from __future__ import annotations

from pydantic import Field

from fer_core.config.align import AlignConfig
from fer_core.config.augment import AugmentConfig
from fer_core.config.base import Config
from fer_core.config.duplicates import DedupConfig
from fer_core.config.ingest import IngestConfig
from fer_core.config.near_duplicates import NearDupConfig
from fer_core.config.quality import QualityConfig
from fer_core.config.resize import ResizeConfig
from fer_core.config.review import ReviewConfig
from fer_core.config.split import SplitConfig
from fer_core.config.subsets import SubsetSpec

SECTIONS: dict[str, type[Config]] = {
    "ingest": IngestConfig, "review": ReviewConfig, "dedup": DedupConfig,
    "near_duplicates": NearDupConfig, "split": SplitConfig, "quality": QualityConfig,
    "align": AlignConfig, "resize": ResizeConfig, "augment": AugmentConfig}


class PrepareConfig(Config):
    ingest: IngestConfig
    # (ours) a person's relabels and drops from `fer audit`, applied after ingest
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    near_duplicates: NearDupConfig = Field(default_factory=NearDupConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    align: AlignConfig = Field(default_factory=AlignConfig)
    resize: ResizeConfig = Field(default_factory=ResizeConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    # Named subsets of the held-out test split, saved as row indices (fer_core.prepare.subsets).
    subsets: tuple[SubsetSpec, ...] = ()
    # Every kept image is a test image, nothing is split off for training: a dataset that
    # is only scored (cross-dataset evaluation).
    all_test: bool = False


class PrepareOptions(Config):
    """The sections a flow run sets (a typed form each in the Prefect UI). Of a section
    given, the keys set override the config file's; the rest come from the file, then the
    defaults. The data folder, classes, class map, augmentation plan and alignment switch
    are the flow's own parameters (they win over these)."""

    review: ReviewConfig | None = None
    dedup: DedupConfig | None = None
    near_duplicates: NearDupConfig | None = None
    split: SplitConfig | None = None
    quality: QualityConfig | None = None
    align: AlignConfig | None = None
    resize: ResizeConfig | None = None
    augment: AugmentConfig | None = None

    def overrides(self) -> dict[str, dict]:
        """{section: the keys set in it}, for build_config's ``overrides``."""
        return {name: section.model_dump(exclude_unset=True)
                for name in type(self).model_fields
                if (section := getattr(self, name)) is not None}
