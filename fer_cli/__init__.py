"""The ``fer`` command: an interface over the flows in ``flows/`` (not a flow itself).

``fer_cli.main`` holds the parser, ``fer prepare`` and ``fer demo``; each other module
registers its sub-commands with ``register(sub)`` (``fer_cli.main.REGISTRARS``): train,
predict and audit.
Arguments, config files and paths are checked (``fer_cli.checks``) before Prefect is
imported; ``fer_cli.guard`` ends whatever a killed ``fer`` had started.
"""
