# Mini CRM: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

.PHONY: run test lint serve loadtest apicheck stack soak screenshots

$(RUNTIME): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(RUNTIME)

$(DEV): $(RUNTIME) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(DEV)

run: $(RUNTIME)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_dev
	$(PY) manage.py runserver 127.0.0.1:8000

test: $(DEV)
	$(PY) -m pytest

lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

# Production-style serving: set DJANGO_DEBUG=0, DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS,
# DATABASE_URL (and REDIS_URL) first. See docs/deploying.md.
serve: $(RUNTIME)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(VENV)/bin/gunicorn -c crm_site/gunicorn.conf.py crm_site.asgi:application

# Bounded load test on loopback (needs wrk: apt-get install wrk).
loadtest: $(RUNTIME)
	$(PY) manage.py loadtest

# The whole API schema against a live throwaway server (schemathesis): no 5xx,
# no answer that breaks the schema; reads as a team member, writes as staff.
apicheck: $(DEV)
	$(PY) manage.py apicheck

# compose.yaml's web, worker and beat run natively on this machine's PostgreSQL
# and Redis, and checked: health, a page, a task through the worker, a websocket.
stack: $(RUNTIME)
	$(PY) manage.py stack

# A few minutes of load while throwaway Redis and PostgreSQL are stopped and
# started and a worker is killed mid-import: no 500, nothing lost (needs wrk,
# redis-server and PostgreSQL's server binaries).
soak: $(RUNTIME)
	$(PY) manage.py soak

# Retake docs/screenshots/*.png in headless Chromium (needs /usr/bin/chromium).
screenshots: $(DEV)
	CRM_REQUIRE_BROWSER=1 $(PY) -m pytest crm/tests/browser/screenshots.py -p no:cacheprovider -q
