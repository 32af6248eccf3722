# ExchangePatch: `make run` serves a demo on 127.0.0.1:$(PORT); `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: venv run test lint format snapshot bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
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

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache .ruff_cache
