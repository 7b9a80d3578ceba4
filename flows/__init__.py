import os

# The embedded server's telemetry heartbeat contends for its SQLite file on a busy 2-core
# machine ("database is locked"); it serves nothing here.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# On 2 busy cores the embedded server can take longer than Prefect's default 20 s to start.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
