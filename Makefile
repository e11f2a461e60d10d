# Two entry points a newcomer needs: `make test` and (later) `make demo`. Each installs what it
# needs: Debian packages when missing (scripts/install-system-deps.sh), a venv under .venv and the
# Python packages.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: deps test lint eval bench clean demo

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

deps: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check ambulink tests loadtest
	$(VENV)/bin/mypy

eval: $(STAMP)
	$(VENV)/bin/ambulink eval qrs --data ../shared/ecg/mitdb

bench: $(STAMP)
	$(VENV)/bin/ambulink bench signal --data ../shared/ecg/mitdb

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The main job: a hub on http://127.0.0.1:8000 and a simulated fleet replaying bundled records.
demo: $(STAMP)
	$(VENV)/bin/ambulink demo --port 8000 --data-dir var/demo
