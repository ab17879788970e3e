# Mini CRM: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: run test lint serve loadtest screenshots

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_dev
	$(PY) manage.py runserver 127.0.0.1:8000

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

# Production-style serving: set DJANGO_DEBUG=0, DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS,
# DATABASE_URL (and REDIS_URL) first. See README "Deploying".
serve: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(VENV)/bin/gunicorn -c crm_site/gunicorn.conf.py crm_site.wsgi

# Bounded load test on loopback (needs wrk: apt-get install wrk).
loadtest: $(STAMP)
	$(PY) manage.py loadtest

# Retake docs/screenshots/*.png in headless Chromium (needs /usr/bin/chromium).
screenshots: $(STAMP)
	CRM_REQUIRE_BROWSER=1 $(PY) -m pytest crm/tests/browser/screenshots.py -p no:cacheprovider -q
