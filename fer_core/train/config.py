"""The training config: everything that decides a run, loadable from a YAML file.

The schema is fer_core.config.train (torch-free, so that the command line checks a config
before torch loads); it is re-exported here for the training loop and its callers.
"""

from __future__ import annotations

from fer_core.config.train import (
    DEFAULT_MODEL,
    DEVICES,
    LABEL_MODES,
    MAJORITY,
    MODEL_NAMES,
    OPTIMIZERS,
    RESUME_FREE,
    SCHEDULES,
    TrainConfig,
    prepared_label_mode,
    resolve_label_mode,
    validate,
)

__all__ = ["DEFAULT_MODEL", "DEVICES", "LABEL_MODES", "MAJORITY", "MODEL_NAMES", "OPTIMIZERS",
           "RESUME_FREE", "SCHEDULES", "TrainConfig", "prepared_label_mode",
           "resolve_label_mode", "validate"]
