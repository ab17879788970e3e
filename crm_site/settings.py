"""Mini CRM settings: every deploy-specific value comes from the environment."""

import hashlib
import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
import dj_email_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default):
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


# Local development needs no variables; production sets DJANGO_DEBUG=0.
DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY when DJANGO_DEBUG=0.")
    SECRET_KEY = "dev-only-secret-key-never-used-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Daphne's runserver serves websockets too: `make run` is one process.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "channels",
    "import_export",
    "rangefilter",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "crm",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "crm.middleware.StripNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # History rows name the request's user (see crm/history.py for the rest).
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "crm_site.wsgi.application"
ASGI_APPLICATION = "crm_site.asgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DJANGO_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Write-ahead logging: pages keep reading while a worker's import writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 20}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, degrading to misses while Redis is away.
            "BACKEND": "crm.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("DJANGO_CACHE_KEY_PREFIX", "crm"),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Live updates: Redis carries them between processes; in memory for one process.
CHANNEL_LAYERS = {
    "default": (
        {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5-second timeout unless told otherwise,
                # and the layer's blocking reads wait 5 seconds: without this an
                # idle socket's consumer fails every ~5 s (redis/redis-py#4091).
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "prefix": os.environ.get("DJANGO_CACHE_KEY_PREFIX", "crm") + ":asgi",
            },
        }
        if REDIS_URL
        else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    )
}

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-axes first: it refuses a locked-out login before a password is checked.
# Then Django's ModelBackend, with permissions cached (crm/permissions.py).
AUTHENTICATION_BACKENDS = [
    "crm.lockout.LockoutBackend",
    "crm.permissions.CachedPermissionsBackend",
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "clients:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

FIXTURE_DIRS = [BASE_DIR / "fixtures"]

# Production mode is secure by default; each switch can be relaxed on its own,
# e.g. DJANGO_SECURE_SSL_REDIRECT=0 behind a proxy that already redirects.
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", True)
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {
        "handlers": ["console"],
        "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO"),
    },
    # django-axes reports every login at INFO; lockouts come at WARNING.
    "loggers": {"axes": {"level": "WARNING"}},
}

# Mini CRM rules
CRM_BLOCKED_EMAIL_DOMAINS = env_list("CRM_BLOCKED_EMAIL_DOMAINS", ["example.com"])
CRM_VIP_EMAIL_DOMAINS = env_list("CRM_VIP_EMAIL_DOMAINS", ["company.com"])
CRM_PUBLIC_LOGIN_REQUIRED = env_bool("CRM_PUBLIC_LOGIN_REQUIRED", True)
CRM_AVATAR_MAX_BYTES = 5 * 1024 * 1024
CRM_AVATAR_MAX_PIXELS = 40_000_000

# Login lockout (django-axes): after CRM_LOGIN_FAILURE_LIMIT failed logins for
# one username from one address, that pair is locked for
# CRM_LOGIN_COOLOFF_MINUTES. Attempts are kept in the database, so every worker
# counts together. Staff unlock in the admin (Axes > Access attempts) or with
# `manage.py axes_reset_username <name>`; see docs/staff.md.
AXES_FAILURE_LIMIT = env_int("CRM_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("CRM_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "crm.lockout.locked_out"
AXES_CLIENT_IP_CALLABLE = "crm.lockout.client_ip"
AXES_HTTP_RESPONSE_CODE = 429
# Behind N proxies that each append to X-Forwarded-For, the client's address
# is the Nth entry from the right; 0 (no proxy) uses REMOTE_ADDR.
CRM_LOGIN_PROXY_COUNT = env_int("CRM_LOGIN_PROXY_COUNT", 0)
# Uploaded imports wait here between preview and confirm. Each deployment
# (project folder and database) gets its own folder; uploads older than a day
# are deleted.
CRM_IMPORT_UPLOAD_DIR = Path(
    os.environ.get("CRM_IMPORT_UPLOAD_DIR")
    or Path(tempfile.gettempdir())
    / "crm-imports-{}".format(
        hashlib.sha256(
            f"{BASE_DIR}|{DATABASES['default'].get('NAME')}".encode()
        ).hexdigest()[:12]
    )
)
CRM_IMPORT_UPLOAD_MAX_AGE = env_int("CRM_IMPORT_UPLOAD_MAX_AGE", 24 * 60 * 60)
# Bigger uploads are refused before they are read (a million clients is ~50 MB).
CRM_IMPORT_MAX_BYTES = env_int("CRM_IMPORT_MAX_BYTES", 100 * 1024 * 1024)

# Background jobs: big imports and exports, and the monthly order report run by
# Celery on Redis. With no broker configured, tasks run in the process that asks
# for them, so local development and the tests need nothing more.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True  # a Job row records what a job did
# A job whose worker dies goes back to the queue; its next run marks it failed.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 60 * 60)
}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "crm")
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    # 06:00 on the 1st, in TIME_ZONE: last month's orders to the manager.
    "monthly-order-report": {
        "task": "crm.tasks.send_order_report",
        "schedule": crontab(minute=0, hour=6, day_of_month=1),
    },
    "tidy-jobs": {"task": "crm.tasks.tidy_jobs", "schedule": 5 * 60},
}
# An import or export bigger than this many rows runs as a background job.
CRM_IMPORT_JOB_ROWS = env_int("CRM_IMPORT_JOB_ROWS", 5000)
# Job uploads and export files: web and worker must share this folder.
CRM_PRIVATE_FILES_DIR = Path(
    os.environ.get("CRM_PRIVATE_FILES_DIR") or BASE_DIR / "private"
)
CRM_JOB_FILE_MAX_AGE = env_int("CRM_JOB_FILE_MAX_AGE", 24 * 60 * 60)
# A running job whose progress has not moved for this long has lost its worker.
CRM_JOB_STALL_SECONDS = env_int("CRM_JOB_STALL_SECONDS", 10 * 60)

# The monthly order report goes by email to these addresses.
CRM_REPORT_RECIPIENTS = env_list("CRM_REPORT_RECIPIENTS", [])
# e.g. smtp://user:password@smtp.example.org:587/?tls=True; console by default.
vars().update(dj_email_url.parse(os.environ.get("DJANGO_EMAIL_URL") or "console:"))
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "crm@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# django-import-export. With several workers the preview and the confirm of an
# import can land on different machines: keep the uploaded file in the shared
# cache then, not on one worker's disk.
IMPORT_EXPORT_TMP_STORAGE_CLASS = (
    "crm.spreadsheets.storage.SharedCacheStorage"
    if REDIS_URL
    else "crm.spreadsheets.storage.FolderStorage"
)
IMPORT_EXPORT_SKIP_ADMIN_LOG = False
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "import"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "export"

# The REST API (/api/, Django REST framework; see docs/api.md). Tokens are made
# in the admin (Auth Token > Tokens). Token first: an anonymous request gets
# 401 with a WWW-Authenticate header rather than 403.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": (
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ),
    "DEFAULT_PERMISSION_CLASSES": ("crm.api.permissions.CrmModelPermissions",),
    "DEFAULT_FILTER_BACKENDS": ("django_filters.rest_framework.DjangoFilterBackend",),
    "DEFAULT_PAGINATION_CLASS": "crm.api.pagination.PageNumberPagination",
    "DEFAULT_THROTTLE_CLASSES": (
        "crm.api.throttling.AnonThrottle",
        "crm.api.throttling.UserThrottle",
    ),
    "DEFAULT_SCHEMA_CLASS": "crm.api.schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ("rest_framework.renderers.JSONRenderer",),
    "DEFAULT_PARSER_CLASSES": ("crm.api.parsers.JSONParser",),
    "NUM_PROXIES": CRM_LOGIN_PROXY_COUNT,
    "COERCE_DECIMAL_TO_STRING": True,
    "EXCEPTION_HANDLER": "crm.api.exceptions.exception_handler",
}
# Requests per anonymous address and per user, e.g. 60/min, 10/s, 5000/hour,
# counted in the shared cache (Redis with REDIS_URL) so all workers count together.
CRM_API_THROTTLE_ANON = os.environ.get("CRM_API_THROTTLE_ANON") or "60/min"
CRM_API_THROTTLE_USER = os.environ.get("CRM_API_THROTTLE_USER") or "1000/min"
for _name in ("CRM_API_THROTTLE_ANON", "CRM_API_THROTTLE_USER"):
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|m|min|h|hour|d|day)", vars()[_name]):
        raise ImproperlyConfigured(
            f"{_name} must look like 60/min (a number, then /s, /min, /hour or /day)."
        )
SPECTACULAR_SETTINGS = {
    "TITLE": "Mini CRM API",
    "DESCRIPTION": "Clients and their orders. See docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Swagger UI from our own static files (drf-spectacular-sidecar), no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"OrderStatus": "crm.models.Order.Status"},
}
# django-simple-history: client and order history (see docs/staff.md). Going
# back to an old version is "undo" of a merge or an import, which checks what
# changed since; the history pages only show.
SIMPLE_HISTORY_REVERT_DISABLED = True
# An object's history is found by its id (indexed); an index on the date alone
# would only slow down the history rows a bulk import writes.
SIMPLE_HISTORY_DATE_INDEX = False
