import os

# The embedded server's telemetry heartbeat contends for its SQLite file on a busy 2-core
# machine ("database is locked"); it serves nothing here.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
