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
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "1800"))
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

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
