# Mini CRM: pages, websockets (web), Celery worker and beat, from one image.
# Build: docker build -t mini-crm .   Configuration comes from the environment only.

# --- build: install the runtime requirements into a virtualenv -----------------
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
COPY requirements.txt /tmp/requirements.txt
RUN /venv/bin/pip install --no-compile -r /tmp/requirements.txt

# --- runtime: the virtualenv, the code, collected static files, no root --------
FROM python:3.11.14-slim-bookworm
# "PRIVATE" in a folder's name is not a secret: no secret is baked into the image.
# hadolint ignore=DL3064
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    DJANGO_MEDIA_ROOT=/app/data/media \
    CRM_PRIVATE_FILES_DIR=/app/data/private \
    CRM_IMPORT_UPLOAD_DIR=/app/data/uploads \
    GUNICORN_BIND=0.0.0.0:8000
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin crm
COPY --from=build /venv /venv
WORKDIR /app
COPY . /app
# collectstatic needs settings, not secrets: a throwaway key for this one command.
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only-not-a-secret \
    python manage.py collectstatic --noinput -v0 \
 && mkdir -p /app/data/media /app/data/private /app/data/uploads \
 && chown -R crm:crm /app/data
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/', timeout=4)"]
# One port for pages and websockets: gunicorn with uvicorn workers (docs/deploying.md).
CMD ["gunicorn", "-c", "crm_site/gunicorn.conf.py", "crm_site.asgi:application"]
