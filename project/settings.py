"""Django settings, all read from the environment (django-environ).

Every ``HERD_*`` variable is listed in the README's settings table. A malformed value fails at
start-up with ``ImproperlyConfigured`` naming the variable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import environ
from django.core.exceptions import ImproperlyConfigured

from accounts.hosts import AUTH_MODES, default_allowed_hosts, default_auth_mode
from project.durations import parse_duration
from project.home import embedded_broker_url_file, herd_home, local_secret_key, private_file
from project.sizes import parse_size
from workers.broker import wire

_Parsed = TypeVar("_Parsed")

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()


def parsed(name: str, parse: Callable[[str], _Parsed], default: str) -> _Parsed:
    """``parse`` of the variable ``name`` (``default`` when it is unset); a value it refuses
    stops the start with the variable's name."""
    try:
        return parse(env.str(name, default=default))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from exc


def on_or_off(value: str) -> bool:
    words = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False}
    if value.strip().lower() not in words:
        raise ValueError(f"expected on or off, got {value!r}")
    return words[value.strip().lower()]


HERD_HOME = herd_home()
HERD_HOST = env.str("HERD_HOST", default="127.0.0.1:11434")
# A prefix for every Redis key and queue name, so that several installations (or test runs)
# can share one Redis without reading each other's work.
HERD_NAMESPACE = env.str("HERD_NAMESPACE", default="herd")

SECRET_KEY = env.str("SECRET_KEY", default="") or local_secret_key(HERD_HOME)
DEBUG = env.bool("HERD_DEBUG", default=False)
# The Host names answered: on loopback, loopback names only (a page cannot reach the server by
# pointing a name of its own at 127.0.0.1); elsewhere any, unless listed.
ALLOWED_HOSTS = env.list("HERD_ALLOWED_HOSTS", default=default_allowed_hosts(HERD_HOST))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "corsheaders",
    "models_app",
    "inference_app",
    "workers",
    "accounts",
]

# Django's own middleware, as subclasses that pass requests to the APIs straight on (see
# project.middleware): on the pages and the admin they are Django's.
MIDDLEWARE = [
    # Outermost: a line for every API request, refusals included (HERD_LOG_REQUESTS).
    "project.edge.request_log.RequestLogMiddleware",
    "project.middleware.ApiSecurityMiddleware",
    # Before the key check: see HERD_ORIGINS.
    "corsheaders.middleware.CorsMiddleware",
    "accounts.middleware.ApiKeyMiddleware",
    "project.middleware.ApiSessionMiddleware",
    "project.middleware.ApiCommonMiddleware",
    "project.middleware.ApiCsrfViewMiddleware",
    "project.middleware.ApiAuthenticationMiddleware",
    "project.middleware.ApiMessageMiddleware",
    "project.middleware.ApiXFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

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

# The embedded database holds the keys' hashes and everyone's usage: its owner's alone.
SQLITE_PATH = HERD_HOME / "herd.sqlite3"
if not env.str("DATABASE_URL", default=""):
    private_file(SQLITE_PATH)
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the workers and beat all write to one file: wait for a lock rather
    # than failing, and let readers run beside the writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            # WAL with synchronous=NORMAL: commits skip an fsync each, and the file stays
            # consistent; a crash may lose the last moments of usage records, not corrupt them.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A connection is a file handle here, and opening one runs the PRAGMAs above: each thread
    # keeps its own rather than opening one per request or batch line.
    DATABASES["default"].setdefault("CONN_MAX_AGE", 600)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _broker_url() -> str:
    configured = env.str("REDIS_URL", default="")
    if configured:
        return configured
    url_file = embedded_broker_url_file(HERD_HOME)
    if url_file.exists():
        return url_file.read_text().strip()
    # Nothing configured and no embedded broker running yet: `herd serve` starts one and
    # passes REDIS_URL to its children; other commands that need a broker say so when they
    # connect.
    return "redis://127.0.0.1:6379/0"


REDIS_URL_CONFIGURED = bool(env.str("REDIS_URL", default=""))
REDIS_URL = _broker_url()

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = HERD_HOME / "static"
# htmx, the stylesheet and the playground's script; served by project.pages.static.
STATICFILES_DIRS = [BASE_DIR / "static"]
LOGIN_URL = "/ui/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/ui/login/"

MODELS_DIR = Path(env.str("HERD_MODELS", default=str(HERD_HOME / "models")))
# Disk space a pull must leave free in MODELS_DIR after the model is down.
HERD_DISK_RESERVE = parsed("HERD_DISK_RESERVE", parse_size, "256MB")
# Largest blob (a GGUF sent to /api/blobs) accepted; larger gets 413.
HERD_MAX_BLOB = parsed("HERD_MAX_BLOB", parse_size, "256GB")
# A pull writes (and reports progress) in blocks of this size.
HERD_PULL_CHUNK = parsed("HERD_PULL_CHUNK", parse_size, "1MiB")

MAX_BODY_BYTES = parsed("HERD_MAX_BODY", parse_size, "16MB")
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES

# Images in chat requests (inference_app.images): how many one request may hold, how large
# each may be (its bytes, decoded), and whether the web process fetches an http(s) image URL
# a request names. Off by default: a server that fetches what a user names can be made to
# reach hosts only it can reach (SSRF). A fetch waits at most HERD_IMAGE_FETCH_TIMEOUT.
HERD_MAX_IMAGES = env.int("HERD_MAX_IMAGES", default=8)
if HERD_MAX_IMAGES < 0:
    raise ImproperlyConfigured(f"HERD_MAX_IMAGES: expected 0 or more, got {HERD_MAX_IMAGES}")
HERD_MAX_IMAGE_BYTES = parsed("HERD_MAX_IMAGE_BYTES", parse_size, "10MB")
HERD_FETCH_IMAGES = env.bool("HERD_FETCH_IMAGES", default=False)
HERD_IMAGE_FETCH_TIMEOUT = env.float("HERD_IMAGE_FETCH_TIMEOUT", default=10.0)

# Inference.
# 0: the model's own context, as far as the worker's memory budget allows
# (workers.worker.residency).
HERD_NUM_CTX = env.int("HERD_NUM_CTX", default=0)
# 0: one per physical core this process may use, within a cgroup CPU quota (workers.worker.cpus).
HERD_NUM_THREADS = env.int("HERD_NUM_THREADS", default=0)
# Requests a worker takes at once: as many as a CPU model decodes together.
HERD_WORKER_THREADS = env.int("HERD_WORKER_THREADS", default=32)
# llama.cpp's weight repacking at load time: auto leaves it off where the CPU has AMX, whose
# kernels crash on some machines (workers.engine.loading).
HERD_CPU_REPACK = env.str("HERD_CPU_REPACK", default="auto")
if HERD_CPU_REPACK not in ("auto", "on", "off"):
    raise ImproperlyConfigured(
        f"HERD_CPU_REPACK: expected auto, on or off, got {HERD_CPU_REPACK!r}"
    )
# What a worker keeps its models' KV caches in (a model record's kv_cache_type parameter
# wins): f16, or q8_0 and q4_0, which hold about twice and four times the tokens in the same
# memory (workers.kv_cache).
HERD_KV_CACHE_TYPE = env.str("HERD_KV_CACHE_TYPE", default="f16")
if HERD_KV_CACHE_TYPE not in ("f16", "q8_0", "q4_0"):
    raise ImproperlyConfigured(
        f"HERD_KV_CACHE_TYPE: expected f16, q8_0 or q4_0, got {HERD_KV_CACHE_TYPE!r}"
    )
# The most sequences one resident model decodes together (continuous batching), each starting
# once its KV cells are free; 1 runs one request at a time; 0 picks per device
# (workers.worker.residency.parallel_slots and cache_sequences).
HERD_PARALLEL = env.int("HERD_PARALLEL", default=0)
if HERD_PARALLEL < 0:
    raise ImproperlyConfigured(f"HERD_PARALLEL: expected 0 or more, got {HERD_PARALLEL}")
# How long web waits for a worker to pick a request up before answering 503.
HERD_QUEUE_TIMEOUT = env.float("HERD_QUEUE_TIMEOUT", default=300.0)
# Requests waiting in one interactive lane beyond which new ones get 503 and Retry-After.
HERD_MAX_QUEUE = env.int("HERD_MAX_QUEUE", default=512)
HERD_RETRY_AFTER = env.int("HERD_RETRY_AFTER", default=2)
# A worker whose heartbeat is older than this is taken for dead.
HERD_HEARTBEAT_TTL = env.float("HERD_HEARTBEAT_TTL", default=3.0)
HERD_DEFAULT_MAX_TOKENS = env.int("HERD_DEFAULT_MAX_TOKENS", default=2048)
# How long a model stays loaded after its last request when the request does not say
# (Ollama's keep_alive: seconds or "5m"; negative keeps models forever).
HERD_KEEP_ALIVE = parsed("HERD_KEEP_ALIVE", parse_duration, "5m")
# The longest keep_alive a key of a user who is not staff may ask for (a negative one, forever,
# included): nobody else's key may pin a model for longer.
HERD_MAX_KEEP_ALIVE = parsed("HERD_MAX_KEEP_ALIVE", parse_duration, "1h")

# Batches and files.
HERD_FILES_DIR = Path(env.str("HERD_FILES", default=str(HERD_HOME / "files")))
HERD_MAX_UPLOAD = parsed("HERD_MAX_UPLOAD", parse_size, "200MB")
# Lines of one batch queued or running at once: batches sharing a lane take turns. More than a
# CPU worker runs at once (32), so that a line is always waiting when one ends.
HERD_BATCH_WINDOW = env.int("HERD_BATCH_WINDOW", default=64)
# Threads per worker that run batch lines (they wait on the engine, not on the CPU): more than
# a CPU model decodes at once, so that the next line is ready when one ends.
HERD_BATCH_RUNNERS = env.int("HERD_BATCH_RUNNERS", default=40)
# A batch line queued this many seconds ago whose message is in no lane and held by no
# worker was lost by the broker (a restart mid-delivery): it is sent again.
HERD_LOST_LINE_AFTER = env.float("HERD_LOST_LINE_AFTER", default=30.0)
# How often beat expires overdue batches and sends back the work of dead workers.
HERD_BEAT_INTERVAL = env.float("HERD_BEAT_INTERVAL", default=5.0)

# API keys: required unless HERD_AUTH=off, which is the default only on a loopback HERD_HOST
# (`herd serve` refuses to listen elsewhere with auth off unless HERD_AUTH=off is explicit).
HERD_AUTH_EXPLICIT = bool(env.str("HERD_AUTH", default=""))
HERD_AUTH = env.str("HERD_AUTH", default="") or default_auth_mode(HERD_HOST)
if HERD_AUTH not in AUTH_MODES:
    raise ImproperlyConfigured(f"HERD_AUTH: expected one of {AUTH_MODES}, got {HERD_AUTH!r}")
HERD_AUTH_REQUIRED = HERD_AUTH == "required"
# How long a web process trusts what it read about a key: a revocation (or a new limit)
# takes effect everywhere within this many seconds.
HERD_KEY_CACHE_SECONDS = env.float("HERD_KEY_CACHE_SECONDS", default=5.0)
# Tests only: the limit windows follow an instant a test holds in Redis (accounts.limits).
HERD_TEST_CLOCK = env.bool("HERD_TEST_CLOCK", default=False)
# Browser origins allowed to call the APIs (CORS); "*" for any. django-cors-headers answers
# them on /v1 and /api, before the key check: a preflight carries no key, and a refusal's
# CORS headers let the page read why. No credentials: API calls send a key, not cookies. (It
# costs about 20 µs a request more than the hand-written middleware it replaced, within the
# noise of a streamed answer: bench/RESULTS.md.)
HERD_ORIGINS = env.list("HERD_ORIGINS", default=[])
CORS_ALLOW_ALL_ORIGINS = "*" in HERD_ORIGINS
CORS_ALLOWED_ORIGINS = [] if CORS_ALLOW_ALL_ORIGINS else HERD_ORIGINS
CORS_URLS_REGEX = r"^/(v1|api)(/|$)"
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ("GET", "POST", "DELETE", "OPTIONS")
# Anthropic's clients send their API version and beta features on every request, and its
# browser client says it calls from a browser on purpose.
CORS_ALLOW_HEADERS = (
    "authorization",
    "x-api-key",
    "content-type",
    "openai-organization",
    "openai-project",
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
)
CORS_EXPOSE_HEADERS = (
    "x-request-id",
    "retry-after",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
)
CORS_PREFLIGHT_MAX_AGE = 600

REST_FRAMEWORK: dict[str, Any] = {
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Herd",
    "DESCRIPTION": "Herd's REST endpoints: batches and files (OpenAI's shapes), keys and usage.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Celery: the broker is Redis (or the embedded Valkey). Workers run the threads pool (one
# process holds the models), take one message per free thread, and acknowledge after the
# task ends so that a task lost with its worker comes back.
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "queue_order_strategy": "priority",
    "visibility_timeout": env.int("HERD_VISIBILITY_TIMEOUT", default=3600),
    "global_keyprefix": f"{HERD_NAMESPACE}:",
    # Look for deliveries unacknowledged past the visibility timeout (their worker died)
    # every HERD_RESTORE_INTERVAL seconds.
    "unacked_restore_interval": env.int("HERD_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": 1,
    # Ten levels, 0 taken first: a request's level is its turn among its key's waiting
    # requests (workers.broker.fairness).
    "priority_steps": list(range(10)),
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = f"{HERD_NAMESPACE}.default"
CELERY_BEAT_SCHEDULE_FILENAME = str(HERD_HOME / "run" / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "expire-batches": {"task": wire.EXPIRE_BATCHES, "schedule": HERD_BEAT_INTERVAL},
    "reap-dead-workers": {"task": wire.REAP_DEAD_WORKERS, "schedule": HERD_BEAT_INTERVAL},
    "resume-orphaned-pulls": {"task": wire.RESUME_ORPHANED_PULLS, "schedule": HERD_BEAT_INTERVAL},
}

HERD_LOG_LEVEL = env.str("HERD_LOG_LEVEL", default="INFO").upper()
# One line per API request in the log (project.edge.request_log): "on" or "off".
HERD_LOG_REQUESTS = parsed("HERD_LOG_REQUESTS", on_or_off, "on")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"quiet": {"()": "project.logs.QuietLog"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["quiet"],
        }
    },
    "root": {"handlers": ["console"], "level": HERD_LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
