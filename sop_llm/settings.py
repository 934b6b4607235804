"""Django settings: every value comes from the environment (see README, Configuration)."""

import hashlib
import os
import secrets
from pathlib import Path

from sop_llm.core.config import (
    check_sentinel_settings,
    env_bool,
    env_choice,
    env_float,
    env_hostports,
    env_int,
    env_list,
    env_str,
    env_url,
    env_webhook_secret,
)
from sop_llm.core.lanes import LANES
from sop_llm.core.redis_connection import SentinelConnection

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Redis: the only store -------------------------------------------------------------
# Unset REDIS_URL means "the embedded server": `make run` starts it on EMBEDDED_REDIS_PORT.
EMBEDDED_REDIS_PORT = env_int("EMBEDDED_REDIS_PORT", 6380, min=1, max=65535)
# Sentinel (high availability): every client asks these for the current master of
# REDIS_SENTINEL_MASTER and follows a failover by itself. Exclusive with REDIS_URL.
REDIS_SENTINELS = env_hostports("REDIS_SENTINELS")
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER")
REDIS_SENTINEL_PASSWORD = env_str("REDIS_SENTINEL_PASSWORD")  # the Sentinels' own AUTH
REDIS_PASSWORD = env_str("REDIS_PASSWORD")  # the master's (and replicas') AUTH, Sentinel mode
REDIS_DB = env_int("REDIS_DB", 0, min=0, max=15)  # Sentinel mode; with REDIS_URL, in the URL
check_sentinel_settings(REDIS_SENTINELS, REDIS_SENTINEL_MASTER, env_str("REDIS_URL"))
# A request waiting for its task rides out a Redis lost for this long (a restart, a failover)
# before it answers 503: a client answered 503 for a blip submits its task again.
REDIS_RECONNECT_GRACE_SECONDS = env_float("REDIS_RECONNECT_GRACE_SECONDS", 5.0, min=0, max=60)
REDIS_EMBEDDED = env_str("REDIS_URL") is None and not REDIS_SENTINELS
REDIS_URL = env_url(
    "REDIS_URL", f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0", schemes=("redis", "rediss", "unix")
)
# Task creation waits for this many replicas to hold the task before its 202 (Redis WAIT),
# so an acknowledged task survives the loss of the master. 0: the 202 follows the master's
# write alone (a task written within the replication lag before a master crash may be lost).
REDIS_WAIT_REPLICAS = env_int("REDIS_WAIT_REPLICAS", 0, min=0, max=16)
# Below the 0.8 s command timeout of sop_llm/core/redis.py, which the WAIT must fit in.
REDIS_WAIT_TIMEOUT_MS = env_int("REDIS_WAIT_TIMEOUT_MS", 300, min=1, max=600)
REDIS_KEY_PREFIX = env_str("REDIS_KEY_PREFIX", "")
# Where the embedded server keeps its AOF and snapshot (only used when REDIS_URL is unset).
DATA_DIR = Path(env_str("SOP_LLM_DATA_DIR", str(BASE_DIR / "var"))).expanduser().resolve()

# --- GPU and models ----------------------------------------------------------------------
GPU_INDEX = env_int("GPU_INDEX", 0, min=0, max=63)
# The GPU's name in Redis (its lock, what it has loaded): distinct per physical GPU across all
# hosts (e.g. `gpu-b:0`), the same for processes that share one GPU. Default: GPU_INDEX.
GPU_ID = env_str("GPU_ID", str(GPU_INDEX))
# This machine's name in liveness records (default: the OS hostname).
SOP_LLM_HOSTNAME = env_str("SOP_LLM_HOSTNAME")
MAX_VRAM_USAGE_PERCENT = env_int("MAX_VRAM_USAGE_PERCENT", 95, min=1, max=100)
VRAM_RESERVE_MB = env_int("VRAM_RESERVE_MB", 1024, min=0)
MODELS_DIR = Path(env_str("MODELS_DIR", str(BASE_DIR / "models"))).expanduser().resolve()
LLAMA_THREADS = env_int("LLAMA_THREADS", 0, min=0, max=512)  # 0 = every core
# Sequences decoded together by the GPU worker (continuous batching); 1 = one task at a time.
GPU_SLOTS = env_int("GPU_SLOTS", 4, min=1, max=64)
# For benchmarks and tests only: SYNTHETIC replaces the batch's llama_decode with a fixed-time
# step that emits canned text (models_gpu/engine/synthetic.py); the model still loads to tokenize.
LOCAL_ENGINE = env_choice("LOCAL_ENGINE", "LLAMA", ("LLAMA", "SYNTHETIC")).lower()
SYNTHETIC_STEP_MS = env_float("SYNTHETIC_STEP_MS", 10.0, min=0.1, max=10_000)
# Streamed tokens go to Redis (and on to SSE readers) at most this often per process, a few
# decode steps' tokens per event at GPU rates; 0: as fast as Redis takes them.
TOKEN_FLUSH_MS = env_float("TOKEN_FLUSH_MS", 20.0, min=0, max=1000)
GRAMMAR_ENGINE = env_choice("GRAMMAR_ENGINE", "LLGUIDANCE", ("LLGUIDANCE", "NATIVE")).lower()
# Dotted path of the VRAM reader; tests swap in readings because this machine has no GPU.
GPU_READER = env_str("GPU_READER", "models_gpu.vram.NvmlReader")

# --- Task lifecycle ---------------------------------------------------------------------
SESSION_TTL_HOURS = env_int("SESSION_TTL_HOURS", 24, min=1, max=24 * 30)
IDEMPOTENCY_TTL_HOURS = env_int("IDEMPOTENCY_TTL_HOURS", 24, min=1, max=24 * 30)
TASK_DEFAULT_TIMEOUT_SECONDS = env_int("TASK_DEFAULT_TIMEOUT_SECONDS", 300, min=1, max=86400)
TASK_MAX_TIMEOUT_SECONDS = env_int("TASK_MAX_TIMEOUT_SECONDS", 3600, min=1, max=86400)
TASK_MAX_ATTEMPTS = env_int("TASK_MAX_ATTEMPTS", 2, min=1, max=10)
# A local generation keeps its tokens on the task at most every CHECKPOINT_TOKENS tokens or
# CHECKPOINT_MS, whichever comes first, so a rerun resumes instead of starting over; 0 and 0:
# no checkpoints (a preemption still writes its own).
CHECKPOINT_TOKENS = env_int("CHECKPOINT_TOKENS", 32, min=0, max=100_000)
CHECKPOINT_MS = env_float("CHECKPOINT_MS", 500.0, min=0, max=3_600_000)
# A queued task this many priority levels above the lowest running slot's takes that slot
# when none is free (the slot's task is checkpointed and requeued at its old place); 0: off.
PREEMPT_PRIORITY_GAP = env_int("PREEMPT_PRIORITY_GAP", 10, min=0, max=200)
# How often one task may be preempted; then it keeps its slot (no starvation).
MAX_PREEMPTIONS = env_int("MAX_PREEMPTIONS", 2, min=0, max=100)
MAX_TOKENS_LIMIT = env_int("MAX_TOKENS_LIMIT", 8192, min=1)
QUEUE_MAX_PENDING = env_int("QUEUE_MAX_PENDING", 10000, min=1)
MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", 1024 * 1024, min=1024)
PROVIDER_MAX_RETRIES = env_int("PROVIDER_MAX_RETRIES", 2, min=0, max=10)
PROVIDER_RETRY_BACKOFF_SECONDS = env_float("PROVIDER_RETRY_BACKOFF_SECONDS", 0.5, min=0, max=60)
PROVIDER_RETRY_AFTER_MAX_SECONDS = env_float("PROVIDER_RETRY_AFTER_MAX_SECONDS", 30, min=0)
WORKER_HEARTBEAT_SECONDS = env_float("WORKER_HEARTBEAT_SECONDS", 5, min=0.1, max=60)

# --- Batch API (/v1/files, /v1/batches) -----------------------------------------------------
BATCH_MAX_LINES = env_int("BATCH_MAX_LINES", 50_000, min=1)
BATCH_MAX_FILE_BYTES = env_int("BATCH_MAX_FILE_BYTES", 100 * 1024 * 1024, min=1024)
BATCH_PRIORITY = env_int("BATCH_PRIORITY", -10, min=-100, max=100)  # below interactive work
# What a completion_window of "24h" lasts (tests shorten it to see a batch expire).
BATCH_WINDOW_SECONDS = env_int("BATCH_WINDOW_SECONDS", 86400, min=1, max=7 * 86400)

# --- Remote providers -------------------------------------------------------------------
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_url("OPENAI_BASE_URL", "https://api.openai.com/v1", schemes=("http", "https"))
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env_url("ANTHROPIC_BASE_URL", None, schemes=("http", "https"))
OPENAI_COMPATIBLE_BASE_URL = env_url("OPENAI_COMPATIBLE_BASE_URL", None, schemes=("http", "https"))
OPENAI_COMPATIBLE_API_KEY = env_str("OPENAI_COMPATIBLE_API_KEY")
OPENROUTER_API_KEY = env_str("OPENROUTER_API_KEY")
TOGETHER_API_KEY = env_str("TOGETHER_API_KEY")

# --- Webhooks -----------------------------------------------------------------------------
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 30, min=1, max=600)
WEBHOOK_MAX_RETRIES = env_int("WEBHOOK_MAX_RETRIES", 3, min=0, max=20)
WEBHOOK_BACKOFF_SECONDS = env_float("WEBHOOK_BACKOFF_SECONDS", 1.0, min=0, max=600)
WEBHOOK_SECRET = env_webhook_secret("WEBHOOK_SECRET")
# Also governs custom-provider URLs: loopback/private targets only for development and tests.
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)

# --- The service's own ------------------------------------------------------------------
HOST = env_str("HOST", "127.0.0.1")
READY_TIMEOUT_SECONDS = env_float("READY_TIMEOUT_SECONDS", 0.8, min=0.05, max=10)
PORT = env_int("PORT", 8000, min=1, max=65535)
REMOTE_WORKERS = env_int("REMOTE_WORKERS", 2, min=0, max=64)
# Web processes of `make run`, all behind PORT: one per core this process may run on (one
# daphne is one Python thread of CPU, the ceiling of the remote path; docs/DEPLOYMENT.md).
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", _CORES or 1, min=1, max=64)
RATE_LIMIT_PER_MINUTE = env_int("RATE_LIMIT_PER_MINUTE", 0, min=0)  # per API key; 0 = off
METRICS_TOKEN = env_str("METRICS_TOKEN")  # a separate bearer token for Prometheus scrapers
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
API_KEYS = env_list("SOP_LLM_API_KEYS")
API_KEYS_GENERATED = not API_KEYS
if API_KEYS_GENERATED:
    # Never run open by accident: a process started without keys accepts only a fresh one.
    API_KEYS = ["sk-sop-dev-" + secrets.token_urlsafe(24)]  # the web process says so

SECRET_KEY = (
    env_str("DJANGO_SECRET_KEY")
    or hashlib.sha256(("sop-llm-signing:" + ",".join(sorted(API_KEYS))).encode()).hexdigest()
)
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or ["*"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_rq",
    "channels",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "sop_llm",
    "tasks",
    "models_gpu",
    "monitor",
    "grammars",
]

MIDDLEWARE = [
    "sop_llm.core.middleware.SecurityHeadersMiddleware",  # CSP: outermost, on every answer
    "sop_llm.core.middleware.BodySizeLimitMiddleware",
    # Django's own two, their hooks run on the event loop instead of a thread per request:
    "sop_llm.core.middleware.CommonMiddleware",
    "sop_llm.core.middleware.CsrfViewMiddleware",  # the sign-in form; DRF views are exempt
]

ROOT_URLCONF = "sop_llm.urls"
ASGI_APPLICATION = "sop_llm.asgi.application"
DATABASES: dict = {}  # nothing of ours lives in a database
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
APPEND_SLASH = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "sop_llm" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{REDIS_KEY_PREFIX}cache",
    }
}
if REDIS_SENTINELS:  # nothing of ours uses Django's cache; it must not point at a fixed master
    CACHES["default"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}

REST_FRAMEWORK = {
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_AUTHENTICATION_CLASSES": ["sop_llm.access.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["sop_llm.access.auth.ScopeRequired"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "sop_llm.access.auth.SignedInBrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["sop_llm.core.jsonparse.StrictJSONParser"],
    "EXCEPTION_HANDLER": "sop_llm.core.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["sop_llm.access.ratelimit.ApiKeyRateThrottle"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "SOP LLM API",
    "DESCRIPTION": "A dumb executor for LLM inference: tasks in, results out. Every call takes "
    '`Authorization: Bearer <key>`. Errors: `{"error": {"code", "message", "field"}}`. '
    "The OpenAI-compatible routes (`/v1/...`) follow OpenAI's own published spec.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["sop_llm.access.auth.ScopeRequired"],
    "SERVE_AUTHENTICATION": ["sop_llm.access.auth.ApiKeyAuthentication"],
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["sop_llm.core.schema.plain_views"],  # the OpenAI routes, ready, metrics
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "sop_llm.core.schema.document_scope_refusals",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",  # served from the package: no CDN needed
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "KvCacheTypeEnum": "models_gpu.serializers.KV_CACHE_TYPES",
        "KeyStateEnum": "sop_llm.access.apikeys.serializers.KEY_STATES",
        "ToolTypeEnum": "tasks.tool_serializers.TOOL_TYPES",
    },
}


def _rq_queue(lane: str) -> tuple[str, dict]:
    return f"{REDIS_KEY_PREFIX}{lane}", {**_rq_connection(), "DEFAULT_TIMEOUT": 3600}


def _rq_connection() -> dict:
    """django-rq's connection for `manage.py rqworker`: the same master as every client."""
    if not REDIS_SENTINELS:
        return {"URL": REDIS_URL}
    return {
        "SENTINELS": REDIS_SENTINELS,
        "MASTER_NAME": REDIS_SENTINEL_MASTER,
        "DB": REDIS_DB,
        "PASSWORD": REDIS_PASSWORD,
        "SOCKET_TIMEOUT": None,  # rq sets its own for blocking dequeues
        "CONNECTION_KWARGS": {
            "socket_connect_timeout": 0.5,
            "connection_class": SentinelConnection,  # see sop_llm/core/redis_connection.py
        },
        "SENTINEL_KWARGS": {
            "password": REDIS_SENTINEL_PASSWORD,
            "socket_connect_timeout": 0.5,
            "socket_timeout": 0.5,
        },
    }


# Queue names carry the key prefix so parallel test runs never share a queue.
# Provider name -> class (dotted path). Another provider is one more entry.
PROVIDERS = {
    "local": "models_gpu.provider.LocalProvider",
    "openai": "sop_llm.providers.openai.OpenAIProvider",
    "openai_compatible": "sop_llm.providers.openai_compatible.OpenAICompatibleProvider",
    "anthropic": "sop_llm.providers.anthropic.AnthropicProvider",
    "custom": "sop_llm.providers.custom.CustomHTTPProvider",
}

RQ_QUEUES = dict(_rq_queue(lane) for lane in LANES)
RQ = {"COMMIT_MODE": "auto"}  # no database, so "on_db_commit" would never fire

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"redact": {"()": "sop_llm.core.redact.RedactingFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
        "redis": {"()": "sop_llm.core.telemetry.logs.RedisLogHandler", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        **{
            app: {"handlers": ["console", "redis"], "level": LOG_LEVEL, "propagate": False}
            for app in ("sop_llm", "tasks", "models_gpu", "monitor", "grammars", "rq.worker")
        },
    },
}
