"""`.env.example` lists every variable the settings read, and compose passes them on."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Not for `.env`: compose sets the services' addresses itself, the image sets
#: its folders and production mode, and the rest serve tests and tools.
NOT_IN_ENV_FILE = {
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CELERY_QUEUE",
    "DJANGO_DEBUG",
    "DJANGO_STATIC_ROOT",
    "DJANGO_MEDIA_ROOT",
    "CRM_PRIVATE_FILES_DIR",
    "CRM_IMPORT_UPLOAD_DIR",
    "GUNICORN_BIND",
    "GUNICORN_WORKER_CLASS",  # compose's web serves websockets: uvicorn workers
}
#: Read by compose itself, not by the site.
COMPOSE_ONLY = {"WEB_PORT", "POSTGRES_PASSWORD"}


def variables_read_by_settings():
    text = "".join(
        (ROOT / "crm_site" / name).read_text()
        for name in ("settings.py", "gunicorn.conf.py")
    )
    pattern = r'(?:environ\.get|env_int|env_bool|env_list|env)\(\s*"([A-Z0-9_]+)"'
    return set(re.findall(pattern, text))


def env_example():
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z0-9_]+)=", text, re.M))


def test_env_example_lists_every_variable_the_settings_read():
    missing = variables_read_by_settings() - env_example() - NOT_IN_ENV_FILE
    assert not missing, f".env.example does not list {sorted(missing)}"


def test_compose_passes_every_variable_of_env_example_to_the_site():
    compose = (ROOT / "compose.yaml").read_text()
    passed = set(re.findall(r"\$\{([A-Z0-9_]+)", compose))
    missing = env_example() - passed
    assert not missing, f"compose.yaml does not pass {sorted(missing)}"
    assert not (env_example() - COMPOSE_ONLY) - variables_read_by_settings(), (
        ".env.example lists a variable the site does not read"
    )
