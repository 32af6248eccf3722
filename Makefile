# ExchangePatch: `make run` serves a demo on 127.0.0.1:$(PORT); `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

LOCK_VENV := .venv-lock

.PHONY: venv run test lint format snapshot bench lock clean

# requirements.txt is the lock (every package pinned with its hashes): pip refuses anything else.
$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
	touch $@

venv: $(VENV)/.installed

run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py catalog_load
	$(PY) manage.py demo_load
	$(PY) manage.py scan --as-of 2024-06-01
	$(PY) manage.py portal_admin
	$(PY) manage.py runserver 127.0.0.1:$(PORT) --noreload

test: venv
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

snapshot: venv
	$(PY) manage.py catalog_snapshot

bench: venv
	$(PY) bench/run_all.py

# Re-lock after editing requirements.in: resolves every transitive dependency and writes requirements.txt with hashes
# (kept pins stay unless requirements.in asks otherwise; `make lock LOCK_ARGS=--upgrade` takes the newest of everything).
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet --disable-pip-version-check pip-tools==7.6.2; }
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links \
		--no-header $(LOCK_ARGS) --output-file requirements.txt requirements.in
	sed -i '1i # The lock: made from requirements.in by `make lock` (pip-compile --generate-hashes); do not edit by hand.' requirements.txt

clean:
	rm -rf $(VENV) $(LOCK_VENV) db.sqlite3 .pytest_cache .ruff_cache
