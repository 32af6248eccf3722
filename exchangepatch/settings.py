"""Settings, all from the environment: SQLite and eager Celery unless DATABASE_URL / CELERY_BROKER_URL are set."""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG")


def secret_key() -> str:
    """DJANGO_SECRET_KEY, or (for a local `make run`) a random key kept in a git-ignored file beside the project."""
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    if key:
        return key
    path = Path(os.environ.get("EXCHANGEPATCH_SECRET_KEY_FILE", BASE_DIR / ".secret_key"))
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(50)
        path.write_text(key)
        path.chmod(0o600)
        return key


SECRET_KEY = secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "django_tables2",
    "drf_spectacular_sidecar",
    "exchangepatch",  # the portal's layout, dashboard, login page and static files
    "health_check",
    "knox",
    "axes",
    "kb",
    "inventory",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "exchangepatch.api.ApiRequestGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: refuses the admin login of a locked-out user name and address.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "exchangepatch.urls"
WSGI_APPLICATION = "exchangepatch.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{os.environ.get('EXCHANGEPATCH_SQLITE_PATH', BASE_DIR / 'db.sqlite3')}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One writer at a time, taken when the transaction begins: two writers that both read first and then write
    # would otherwise fail with "database is locked" instead of waiting for each other.
    DATABASES["default"].setdefault("OPTIONS", {}).update(transaction_mode="IMMEDIATE", timeout=20)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("EXCHANGEPATCH_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve admin assets from the app directories without collectstatic in development (make run).
WHITENOISE_USE_FINDERS = True

# -- production security (README "Security"): all off for a local `make run`, all from the environment ----------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY") else None
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT")
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD")
# A load balancer's health check may come in over plain HTTP: these paths are never redirected to HTTPS.
SECURE_REDIRECT_EXEMPT = env_list("DJANGO_SECURE_REDIRECT_EXEMPT")

# -- sign-in: the admin's login is locked after repeated failures (django-axes) ---------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("EXCHANGEPATCH_LOCKOUT", True)
AXES_FAILURE_LIMIT = int(os.environ.get("EXCHANGEPATCH_LOCKOUT_FAILURES", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("EXCHANGEPATCH_LOCKOUT_MINUTES", "15")))
# The pair by default: a stranger's failures lock out the user name only from the stranger's own address.
AXES_LOCKOUT_PARAMETERS = [env_list("EXCHANGEPATCH_LOCKOUT_BY", "username,ip_address")]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no start-up banner in every command's output

# The cache holds the API's throttle counters; with several web processes they must share one (Redis).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["EXCHANGEPATCH_CACHE_URL"],
    }
    if os.environ.get("EXCHANGEPATCH_CACHE_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# -- API tokens (django-rest-knox) -------------------------------------------------------------------------------
KNOX_TOKEN_MODEL = "inventory.ApiToken"
# knox's own migrations would create its default token table even though inventory.ApiToken replaces it.
MIGRATION_MODULES = {"knox": None}
TOKEN_TTL_DAYS = int(os.environ.get("EXCHANGEPATCH_TOKEN_TTL_DAYS", "365"))
REST_KNOX = {
    "TOKEN_MODEL": KNOX_TOKEN_MODEL,
    "TOKEN_PREFIX": "xp_",
    "TOKEN_TTL": timedelta(days=TOKEN_TTL_DAYS) if TOKEN_TTL_DAYS else None,
    "AUTH_HEADER_PREFIX": "Token",
}

# A 10,000-item sync is about 5 MB of JSON; the limit leaves room and is reported with 413 when passed.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("EXCHANGEPATCH_MAX_BODY_BYTES", str(16 * 1024 * 1024)))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "exchangepatch.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["exchangepatch.authentication.ModelPermissionsOrTokenScope"],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("EXCHANGEPATCH_THROTTLE_USER", "1200/minute"),
        # Failed authentications per client address; past it every token from there gets 429 until the window ends.
        "auth_failure": os.environ.get("EXCHANGEPATCH_THROTTLE_AUTH_FAILURES", "20/minute"),
    },
    "DEFAULT_FILTER_BACKENDS": ["exchangepatch.filters.StrictFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "exchangepatch.api.StablePagination",
    "DEFAULT_SCHEMA_CLASS": "exchangepatch.schema.AutoSchema",
    "DEFAULT_PARSER_CLASSES": ["exchangepatch.parsers.JSONParser"],
    # Responses as ASCII JSON (other characters as \u escapes): a lone surrogate quoted in an error cannot break it.
    "UNICODE_JSON": False,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "EXCEPTION_HANDLER": "exchangepatch.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ExchangePatch API",
    "DESCRIPTION": "Exchange Server patch inventory, compliance verdicts and CMDB sync.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI and Redoc from the installed sidecar package: the docs work on an offline admin network.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "UpdateKindEnum": "kb.choices.UpdateKind",
        "RuleKindEnum": "kb.choices.RuleKind",
        "ClusterKindEnum": "inventory.choices.ClusterKind",
        "BuildSourceEnum": "inventory.choices.BuildSource",
        "ScanStatusEnum": "inventory.choices.ScanStatus",
    },
}

# Celery: eager in-process execution unless a broker is configured (embedded default).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# One Redis can serve several deployments (or a benchmark beside them) when each has its own queue.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "1800"))
# A worker takes one message at a time: a long scan chunk never holds back messages another worker could run.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_ON_FAILURE_OR_TIMEOUT = True
# Publishing gives up after about a second when the broker is down, so the API can answer 503 at once.
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("CELERY_BROKER_CONNECTION_TIMEOUT", "2"))
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.3, "interval_max": 0.5}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers a message whose worker died (acks_late) after this many seconds; our tasks are idempotent, and
# the scan watchdog resumes a scan sooner than this anyway.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
    "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Schedules, written into django-celery-beat's tables by `migrate` when missing (never overwritten: what an admin
# changes or disables in the admin stays). Crontab fields: minute, hour, day_of_week, day_of_month, month_of_year.
EXCHANGEPATCH_SCHEDULES = {
    "scan nightly": {"task": "inventory.scan_scheduled", "crontab": {"minute": "0", "hour": "2"}},
    "catalog refresh daily": {"task": "kb.catalog_refresh", "crontab": {"minute": "30", "hour": "1"}},
    "waiver expiry hourly": {"task": "inventory.waivers_expire", "crontab": {"minute": "5"}},
    "digest daily": {"task": "inventory.digest_send", "crontab": {"minute": "0", "hour": "7"}},
    "retention daily": {"task": "inventory.retention_apply", "crontab": {"minute": "30", "hour": "3"}},
    "scan watchdog": {"task": "inventory.scan_watchdog", "every_seconds": 60},
}

# Scans (docs/jobs.md): servers per chunk, how many workers one scan asks for, how long a scan may go without a
# sign of life before the watchdog resumes it, and how often it is resumed before it is failed.
EXCHANGEPATCH_SCAN_CHUNK_SIZE = int(os.environ.get("EXCHANGEPATCH_SCAN_CHUNK_SIZE", "5000"))
EXCHANGEPATCH_SCAN_FANOUT = int(os.environ.get("EXCHANGEPATCH_SCAN_FANOUT", "8"))
EXCHANGEPATCH_SCAN_LEASE_SECONDS = int(os.environ.get("EXCHANGEPATCH_SCAN_LEASE_SECONDS", "300"))
EXCHANGEPATCH_SCAN_MAX_ATTEMPTS = int(os.environ.get("EXCHANGEPATCH_SCAN_MAX_ATTEMPTS", "5"))
EXCHANGEPATCH_SCAN_PENDING_TIMEOUT = int(os.environ.get("EXCHANGEPATCH_SCAN_PENDING_TIMEOUT", "3600"))
# Failure drills only: seconds a worker waits after claiming each chunk, so a scan can be caught mid-flight.
EXCHANGEPATCH_SCAN_CHUNK_PAUSE = float(os.environ.get("EXCHANGEPATCH_SCAN_CHUNK_PAUSE", "0"))

# Catalog refresh: source URLs (comma-separated; Microsoft's build-number page, the Get-ExchangeBuildNumber CSV, or
# any file:// or http(s):// URL), and after how many days of failed fetches the catalog is reported stale.
EXCHANGEPATCH_CATALOG_SOURCES = env_list("EXCHANGEPATCH_CATALOG_SOURCES")
EXCHANGEPATCH_CATALOG_STALE_DAYS = int(os.environ.get("EXCHANGEPATCH_CATALOG_STALE_DAYS", "7"))

# Notifications: e-mail through Django's backend, webhooks signed per Standard Webhooks (HMAC-SHA256).
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS")
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "exchangepatch@localhost")
EXCHANGEPATCH_WEBHOOK_TIMEOUT = float(os.environ.get("EXCHANGEPATCH_WEBHOOK_TIMEOUT", "10"))
EXCHANGEPATCH_DELIVERY_ATTEMPTS = int(os.environ.get("EXCHANGEPATCH_DELIVERY_ATTEMPTS", "6"))
# Delay before retry n is BACKOFF * 2^(n-1) seconds: 30 s, 1 min, 2 min, 4 min, 8 min by default.
EXCHANGEPATCH_DELIVERY_BACKOFF = float(os.environ.get("EXCHANGEPATCH_DELIVERY_BACKOFF", "30"))
EXCHANGEPATCH_WAIVER_WARNING_DAYS = int(os.environ.get("EXCHANGEPATCH_WAIVER_WARNING_DAYS", "14"))

# Retention: per-scan counts are kept for ever; per-server rows for the newest N succeeded scans.
EXCHANGEPATCH_RETAIN_SCANS = int(os.environ.get("EXCHANGEPATCH_RETAIN_SCANS", "30"))
EXCHANGEPATCH_RETAIN_JOB_DAYS = int(os.environ.get("EXCHANGEPATCH_RETAIN_JOB_DAYS", "90"))

# Portal: sign-in page, landing page, rows per page of the long lists.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
DJANGO_TABLES2_TEMPLATE = "portal/table.html"
EXCHANGEPATCH_PAGE_SIZE = int(os.environ.get("EXCHANGEPATCH_PAGE_SIZE", "100"))

# Domain settings.
# "Today" for support and age calculations can be pinned (reproducible reports, tests).
EXCHANGEPATCH_TODAY = os.environ.get("EXCHANGEPATCH_TODAY", "")
EXCHANGEPATCH_FETCH_TIMEOUT = float(os.environ.get("EXCHANGEPATCH_FETCH_TIMEOUT", "30"))
EXCHANGEPATCH_OVERDUE_DAYS = int(os.environ.get("EXCHANGEPATCH_OVERDUE_DAYS", "30"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("EXCHANGEPATCH_LOG_LEVEL", "INFO")},
}
