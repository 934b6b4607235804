"""Every Redis key the service uses is spelled here and nowhere else.

The prefix (REDIS_KEY_PREFIX, empty in production) is applied in this module only, so a test
run can live under its own prefix and never touch another run's keys.
"""

from django.conf import settings


def _p(name: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}{name}"


def prefix() -> str:
    return settings.REDIS_KEY_PREFIX


def queue_pending(lane: str) -> str:
    """Sorted set of pending task ids, scored so that the lowest score runs first."""
    return _p(f"queue:tasks:{lane}")


def queue_processing(lane: str) -> str:
    """Hash task_id -> worker name of the tasks running in a lane (a lane may have many workers)."""
    return _p(f"queue:processing:{lane}")


def queue_deadlines() -> str:
    """Sorted set of queued task ids that have a deadline, scored by it (the expiry sweep)."""
    return _p("queue:deadlines")


def rq_queue_name(lane: str) -> str:
    return _p(lane)


def session(task_id: str) -> str:
    return _p(f"session:{task_id}")


def session_timeline(task_id: str) -> str:
    return _p(f"session:{task_id}:timeline")


def idempotency(key: str) -> str:
    return _p(f"idempotency:{key}")


def logs_recent() -> str:
    return _p("logs:recent")


def logs_task(task_id: str) -> str:
    return _p(f"logs:{task_id}")


def pubsub_events() -> str:
    return _p("pubsub:events")


def pubsub_logs() -> str:
    return _p("pubsub:logs")


def pubsub_cancel() -> str:
    """Cancellation requests for running tasks, heard by the worker that runs them."""
    return _p("pubsub:cancel")


def pubsub_lane_queued(lane: str) -> str:
    """Rung when a task is queued on a lane: a slot scheduler with a free slot admits it now."""
    return _p(f"pubsub:lane:{lane}:queued")


def system_gpu() -> str:
    return _p("system:gpu")


def stats_daily(date: str) -> str:
    return _p(f"stats:daily:{date}")


def lane_durations(lane: str) -> str:
    """Recent task durations of a lane (ms), for queued tasks' estimated start."""
    return _p(f"stats:durations:{lane}")


def worker_alive(name: str) -> str:
    return _p(f"worker:alive:{name}")


def gpu_lock(gpu_id: str | int) -> str:
    """The GPU's lease (GPU_ID): who may use it now."""
    return _p(f"gpu:lock:{gpu_id}")


def gpu_loaded(gpu_id: str | int) -> str:
    """What the GPU worker has loaded (hash), for status endpoints in other processes."""
    return _p(f"gpu:loaded:{gpu_id}")


# --- Several GPU workers (issue 21): which GPUs publish what they hold ---------------------
def gpu_ids() -> str:
    """Set of GPU_IDs that published a `gpu:loaded` entry (model affinity in the claim)."""
    return _p("gpu:ids")


def recovery_lock() -> str:
    return _p("lock:recovery")


def webhooks_dead() -> str:
    """Dead letters: deliveries that used up their retries (newest first)."""
    return _p("webhooks:dead")


def grammar_check(digest: str) -> str:
    """llama.cpp's verdict on a grammar (JSON), keyed by the grammar and the vocabulary."""
    return _p(f"cache:grammar:{digest}")


def file_hash(stamp: str) -> str:
    """sha256 of a model file, keyed by its path, size and mtime."""
    return _p(f"cache:sha256:{stamp}")


def model_job_outcome(job_id: str) -> str:
    """A model load/unload job's outcome (JSON), kept an hour for late readers."""
    return _p(f"model:job:{job_id}")


def pubsub_model_job(job_id: str) -> str:
    """Announces a model job's outcome, so a waiter needs no polling."""
    return _p(f"pubsub:model:job:{job_id}")


def pubsub_task(task_id: str) -> str:
    """One task's state changes, for callers waiting on it."""
    return _p(f"pubsub:task:{task_id}")


def pubsub_task_tokens(task_id: str) -> str:
    """One task's tokens, for streaming callers only: a plain wait never wakes per token."""
    return _p(f"pubsub:task:{task_id}:tokens")


def stats_total() -> str:
    """Counters since the start of time (Prometheus counters must never go down)."""
    return _p("stats:total")


def metrics_histogram(name: str) -> str:
    return _p(f"stats:hist:{name}")


def rate_limit(client_id: str, window: int) -> str:
    """Requests of one API key in one fixed one-minute window."""
    return _p(f"ratelimit:{client_id}:{window}")
