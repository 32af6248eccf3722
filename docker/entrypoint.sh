#!/usr/bin/env bash
# Container entrypoint for web, worker and beat: refuse placeholder settings, wait for the database, and on the web
# container (EXCHANGEPATCH_MIGRATE=1) migrate and load the bundled catalog; then run the command.
set -euo pipefail

fail() {
  echo "entrypoint: $*" >&2
  exit 1
}

# docker/README.md's .env template uses "change-me" placeholders: starting with one must fail, not half-work.
for name in DJANGO_SECRET_KEY DATABASE_URL DJANGO_ALLOWED_HOSTS; do
  value="${!name:-}"
  [[ -n "$value" ]] || fail "$name is not set (see docker/README.md)"
  [[ "${value,,}" != *change-me* ]] || fail "$name still holds the change-me placeholder from docker/README.md"
done

python - <<'PY'
import os
import sys
import time

import django

django.setup()
from django.db import connection
from django.db.utils import OperationalError

timeout = float(os.environ.get("EXCHANGEPATCH_DB_WAIT_SECONDS", "60"))
deadline = time.monotonic() + timeout
while True:
    try:
        connection.ensure_connection()
        break
    except OperationalError as error:
        if time.monotonic() > deadline:
            sys.exit(f"entrypoint: the database is still unreachable after {timeout:g} s: {error}")
        print("entrypoint: waiting for the database…", file=sys.stderr, flush=True)
        time.sleep(2)
connection.close()
PY

if [[ "${EXCHANGEPATCH_MIGRATE:-0}" == "1" ]]; then
  python manage.py migrate --noinput
  python manage.py catalog_load
fi

exec "$@"
