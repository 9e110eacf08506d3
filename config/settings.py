"""Sourcebook settings, read from the environment.

Unset variables give the embedded default: a SQLite file under ``var/`` and Celery tasks
run in-process. Production sets ``DJANGO_DEBUG=0``, ``SECRET_KEY``, ``ALLOWED_HOSTS``,
``DATABASE_URL`` and ``CELERY_BROKER_URL`` (see ``deploy/README.md``).
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SOURCEBOOK_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false).")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def dev_secret_key() -> str:
    """A per-checkout random key for development, kept out of the repository."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = dev_secret_key()
# --- a weak SECRET_KEY is refused in production (Django's security.W009, made fatal) ---
if not DEBUG:
    from django.core.checks.security.base import _check_secret_key

    if not _check_secret_key(SECRET_KEY):
        raise ImproperlyConfigured(
            "SECRET_KEY is too weak for DJANGO_DEBUG=0: it must have at least 50 characters, "
            "at least 5 different ones, and not start with 'django-insecure-' (Django's "
            'security.W009). Generate one: python -c "import secrets; '
            'print(secrets.token_urlsafe(50))"'
        )
# --- end of weak SECRET_KEY refusal ---

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "kb",
    "publishing",
    "visibility",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy, see CONTENT_SECURITY_POLICY
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# Database: PostgreSQL in production via DATABASE_URL; a SQLite file is the embedded default.
SQLITE_PATH = VAR_DIR / "sourcebook.sqlite3"
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{SQLITE_PATH}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Connections are kept between requests here too (DATABASE_CONN_MAX_AGE): opening the file
    # and running the PRAGMAs below for each request cost an API entity read a third of its
    # throughput under gunicorn.
    # A file (not in-memory) test database, so a worker process can share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-sourcebook.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
ARTIFACT_ROOT = Path(os.environ.get("SOURCEBOOK_ARTIFACT_ROOT", VAR_DIR / "artifacts"))
# --- brand media (images uploaded to publishing.MediaAsset, kept under MEDIA_ROOT) ---
# The largest image accepted (bytes).
SOURCEBOOK_MEDIA_MAX_BYTES = int(os.environ.get("SOURCEBOOK_MEDIA_MAX_BYTES", 10 * 1024 * 1024))
# --- end of brand media ---
# Outbound calls to addresses that brand data names (webhooks, engines, S3 endpoints) go
# only to public addresses (config/egress.py). Operators allow private ones here: host names,
# host:port, addresses or networks, e.g. "127.0.0.1:8765,minio.internal,10.1.0.0/16".
SOURCEBOOK_EGRESS_ALLOW = env_list("SOURCEBOOK_EGRESS_ALLOW")
# The only environment variables that S3 targets and engines may name for credentials
# (access_key_env, secret_key_env, api_key_env), e.g. "R2_ACCESS_KEY,R2_SECRET_KEY".
SOURCEBOOK_CREDENTIAL_ENV = env_list("SOURCEBOOK_CREDENTIAL_ENV")
# Brand-configured directory targets deploy to SITE_ROOT/<brand slug>/<folder>.
SOURCEBOOK_SITE_ROOT = Path(os.environ.get("SOURCEBOOK_SITE_ROOT", VAR_DIR / "site"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # Content-addressed release artifacts (see publishing.store).
    "artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ARTIFACT_ROOT)},
    },
    # Brands' uploaded images (publishing.media): a local directory (MEDIA_ROOT) shared by web
    # processes and workers, or S3-compatible object storage, e.g.
    # {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"bucket_name": "...",
    #  "location": "media", "endpoint_url": "...", "default_acl": None}}.
    "media": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    },
}

# Security: strict whenever debug is off; each switch can be relaxed explicitly.
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # --- health checks answer on plain HTTP too (load balancers, container probes) ---
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    # --- end of health checks on plain HTTP ---
X_FRAME_OPTIONS = "DENY"

# --- Content-Security-Policy (django-csp 4) -------------------------------------------------
# On every response of the app (admin, API docs, the development site): scripts only from our
# own static files, never inline, so text that slips into a page as markup cannot run.
# style-src allows inline styles: the admin's templates and widgets use style attributes.
# The API docs (Swagger UI) load their script as a file (SpectacularSwaggerSplitView), so
# they need no relaxation. Responses that set their own policy keep it (the entity preview's
# sandbox, publishing.admin).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}
# --- end of Content-Security-Policy ---------------------------------------------------------

# Celery: with no broker configured, tasks run in-process (eager) so the embedded
# default needs no server. A configured but unreachable broker fails loudly.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = False
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 60 * 60, "max_retries": 2}
# Workers log through Django's LOGGING (LOG_FORMAT=json gives structured logs there too).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_REDIRECT_STDOUTS = False
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
# Publishing and webhook delivery run on their own queues (workers: -Q celery,publishing,webhooks).
CELERY_TASK_ROUTES = {
    "publishing.build_release": {"queue": "publishing"},
    "publishing.webhook_deliver": {"queue": "webhooks"},
    # Asking engines is slow network waiting: its own queue keeps it from delaying publishes.
    "visibility.run_engine": {"queue": "visibility"},
    "visibility.site_audit_run": {"queue": "visibility"},
}
# Alert emails: SMTP configured from the environment; in debug they are printed.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Sourcebook <sourcebook@localhost>")

CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    # Stored by django-celery-beat's DatabaseScheduler, so visible (and editable) in the admin.
    "publish-scheduled": {"task": "publishing.publish_scheduled", "schedule": 60.0},
    "redispatch-pending-publish-requests": {
        "task": "publishing.redispatch_pending",
        "schedule": 60.0,
    },
    "resume-stalled-visibility-runs": {
        "task": "visibility.resume_stalled_runs",
        "schedule": 600.0,
    },
}

# /ask and /mcp (publishing.answer_endpoint): requests per client and brand.
SOURCEBOOK_ASK_RATE = os.environ.get("SOURCEBOOK_ASK_RATE", "60/minute")
# Rate limits are counted in the cache: shared by every process with Redis (e.g.
# redis://127.0.0.1:6379/1), per process in memory without.
if os.environ.get("SOURCEBOOK_CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["SOURCEBOOK_CACHE_URL"],
        }
    }

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "kb.api.problems.problem_handler",
    "DEFAULT_THROTTLE_RATES": {
        "api": os.environ.get("SOURCEBOOK_API_RATE", "1200/minute"),
    },
    # Clients are told apart by the address nginx (deploy/nginx) appends to X-Forwarded-For:
    # the last one, which a client cannot forge; set 0 when nothing proxies the application.
    "NUM_PROXIES": int(os.environ.get("SOURCEBOOK_NUM_PROXIES", "1")),
    "URL_FORMAT_OVERRIDE": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sourcebook API",
    "DESCRIPTION": "A brand's knowledge for headless sites (delivery) and back offices "
    "(management). Authenticate with `Authorization: Bearer <token>` (create one with "
    "`python manage.py create_api_token SLUG --scope read`). Errors are RFC 9457 problem "
    "details. Every GET has an ETag; writes need If-Match.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Publishing: a build holds its brand's lease, renewed while it works; a dead builder's
# lease expires after this many seconds and the next build takes over.
SOURCEBOOK_BUILD_LEASE_SECONDS = int(os.environ.get("SOURCEBOOK_BUILD_LEASE_SECONDS", 120))
# Processes rendering pages in a large build (forked from the builder); 0: one per core.
SOURCEBOOK_BUILD_PROCESSES = int(os.environ.get("SOURCEBOOK_BUILD_PROCESSES", 0))
# A published directory to serve at / in development (`make demo`); nginx does it in production.
SOURCEBOOK_SERVE_SITE = os.environ.get("SOURCEBOOK_SERVE_SITE", "")

# Limits on imported JSON-LD: protect the process from huge or hostile input.
SOURCEBOOK_IMPORT_MAX_BYTES = int(os.environ.get("SOURCEBOOK_IMPORT_MAX_BYTES", 64 * 1024 * 1024))
SOURCEBOOK_IMPORT_MAX_DEPTH = int(os.environ.get("SOURCEBOOK_IMPORT_MAX_DEPTH", 64))
# --- API imports larger than this many node objects run as a task (202 + a status URL) ---
SOURCEBOOK_API_IMPORT_INLINE_MAX_NODES = int(
    os.environ.get("SOURCEBOOK_API_IMPORT_INLINE_MAX_NODES", 500)
)
# --- end of API import task size ---

# --- logging --------------------------------------------------------------------------------------
# LOG_FORMAT=json gives one JSON object per line (for log shippers); plain text otherwise.
# gunicorn's own lines: config/gunicorn.py; Celery's (banner, shutdown): config/celery.py.
LOG_JSON = os.environ.get("LOG_FORMAT") == "json"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_JSON else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {
        # Django's default handlers would print django.* records a second time, in plain text
        # (its DEBUG-only console); they reach the root handler only. (ADMINS is not set, so
        # its mail_admins handler had nothing to send.)
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # runserver's request lines too, under LOG_FORMAT=json.
        **({"django.server": {"handlers": [], "propagate": True}} if LOG_JSON else {}),
    },
}
if LOG_JSON:
    import logging

    # Python's warnings as records of the py.warnings logger (JSON), not bare stderr lines.
    logging.captureWarnings(True)
# --- end of logging -------------------------------------------------------------------------------
