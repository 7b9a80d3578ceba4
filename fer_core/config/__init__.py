"""Every config schema of the pipeline, as typed, frozen pydantic models: the preparation
sections (one module per stage, so a change to one section's schema reruns that stage
alone) and ``PrepareConfig``, ``TrainConfig``, ``AuditConfig`` and ``DemoConfig``.

A model refuses unknown keys and is never changed in place (``model_copy(update=...)``
makes a changed copy). The stage modules re-export their section (``fer_core.prepare.align
.AlignConfig`` is ``fer_core.config.align.AlignConfig``); the command line validates a
config file against these models before torch or Prefect is imported, and the flows take
them as typed parameters. This ``__init__`` imports nothing, so that a stage's cache key
covers only the config modules that stage imports.

May import: pydantic, the standard library (PyYAML lazily, to read a config file),
``fer_core.UsageError``. No other fer_core package.
"""
