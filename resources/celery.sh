#!/usr/bin/env bash
# The Celery deployment on this machine: redis (broker), Postgres (Dagster's runs and events) and Celery
# workers per GPU group (tiktok_assets/executors/celery_services.py does the work).
#   bash resources/celery.sh start [WORKER ...]   redis + Postgres + workers (one per group by default)
#   bash resources/celery.sh start --no-servers audio@0 vision,text@1
#                                                 only workers (servers on another machine)
#   bash resources/celery.sh stop | status
# WORKER: GROUP[,GROUP...][:CONCURRENCY][@GPU]. Defaults for this machine (override by exporting them):
#   TIKTOK_ASSETS_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/tiktok_assets
#   TIKTOK_ASSETS_CELERY_BROKER=redis://localhost:6379/0
# The UI, the daemon and every worker must see the same settings (and TIKTOK_ASSETS_EXECUTOR=celery).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export TIKTOK_ASSETS_EXECUTOR=celery
export TIKTOK_ASSETS_POSTGRES_URL=${TIKTOK_ASSETS_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/tiktok_assets}
exec bash "$ROOT/resources/setup.sh" python -m tiktok_assets.executors.celery_services "$@"
