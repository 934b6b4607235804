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


def queue_fair_clock(lane: str) -> str:
    """Hash priority band -> the lane's fair-share clock: the place of the latest task
    claimed in that band (tasks/lua/create.lua). At most one field per priority."""
    return _p(f"queue:fair:{lane}:clock")


def queue_fair_owners(lane: str) -> str:
    """Hash "{band}|{owner}" -> where the owner's queued tasks end in that band's fair-share
    order, and "{band}|{owner}|last" -> its latest task's id (expires when idle)."""
    return _p(f"queue:fair:{lane}:owners")


def queue_deadlines() -> str:
    """Sorted set of queued task ids that have a deadline, scored by it (the expiry sweep)."""
    return _p("queue:deadlines")


def rq_queue_name(lane: str) -> str:
    return _p(lane)


def session(task_id: str) -> str:
    return _p(f"session:{task_id}")


def session_timeline(task_id: str) -> str:
    return _p(f"session:{task_id}:timeline")


def session_checkpoint(task_id: str) -> str:
    """A local generation's checkpoint (tasks.checkpoints): its tokens so far, so a rerun after
    a worker death or a preemption resumes; it lives SESSION_TTL_HOURS, as the session."""
    return _p(f"session:{task_id}:checkpoint")


def response(task_id: str) -> str:
    """A Responses API response's own record (its input items, instructions, format): the
    task behind it is `session(task_id)`; both live SESSION_TTL_HOURS."""
    return _p(f"response:{task_id}")


def response_events(task_id: str) -> str:
    """A Redis stream of a response's typed events, entry id 0-(sequence_number + 1), so a
    client can resume after any event."""
    return _p(f"response:{task_id}:events")


def response_recorder(task_id: str) -> str:
    """Held (with a short TTL, refreshed) by the process recording a response's events."""
    return _p(f"response:{task_id}:recorder")


def idempotency(owner: str, key: str) -> str:
    """An idempotency key is its owner's own: two owners may use the same one."""
    return _p(f"idempotency:{owner}:{key}")


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


def rate_limit(principal_id: str, window: int) -> str:
    """Requests of one API key in one fixed one-minute window."""
    return _p(f"ratelimit:{principal_id}:{window}")


# --- Managed API keys, usage and per-key limits (issue 20) ---
# A key itself is never stored: only its sha256 (the digest below).


def api_key(digest: str) -> str:
    """Hash: one managed key's record (id, name, scopes, expiry, limits), by the key's sha256."""
    return _p(f"apikey:{digest}")


def api_key_ids() -> str:
    """Hash id -> digest of every managed key (revoked ones too, for listing)."""
    return _p("apikeys:ids")


def api_key_names() -> str:
    """Hash name -> id of the live managed keys (a name is unique among them)."""
    return _p("apikeys:names")


def principal_open(principal_id: str) -> str:
    """Set of a principal's tasks not yet final (its queued-at-once limit)."""
    return _p(f"principal:{principal_id}:open")


def principal_tokens(principal_id: str, date: str) -> str:
    """Tokens charged to a principal on a UTC day: reserved max_tokens of tasks in flight,
    then what they really used (its tokens-per-day limit)."""
    return _p(f"principal:{principal_id}:tokens:{date}")


def usage_day(date: str) -> str:
    """Hash "{principal}|{model}|{counter}" -> amount for one UTC day."""
    return _p(f"usage:{date}")


def usage_total() -> str:
    """Hash "{principal}|{model}|{counter}" -> amount since the start (for /metrics)."""
    return _p("usage:total")


# --- Batch API: /v1/files and /v1/batches (issue 19) -------------------------------------


def file_meta(file_id: str) -> str:
    """A stored file's record (hash: owner, purpose, filename, bytes, lines, times)."""
    return _p(f"file:{file_id}")


def file_content(file_id: str) -> str:
    """A file's bytes (string); a batch's output and error files grow here by APPEND."""
    return _p(f"file:{file_id}:content")


def files_of(owner: str) -> str:
    """Sorted set of one owner's file ids by creation time (ids of expired files are
    dropped when a listing meets them)."""
    return _p(f"files:owner:{owner}")


def batch(batch_id: str) -> str:
    """A batch (hash): its request, status, times and live counters, never per-line lists."""
    return _p(f"batch:{batch_id}")


def batches_of(owner: str) -> str:
    """Sorted set of one owner's batch ids by creation time."""
    return _p(f"batches:owner:{owner}")


def batches_active() -> str:
    """Set of the batches not yet final: what the recovery sweep and the monitor look at."""
    return _p("batches:active")


def batch_lease(batch_id: str) -> str:
    """Held (with a TTL) by the one process running a batch's validation/enqueue/stop steps."""
    return _p(f"batch:{batch_id}:lease")


def metric_models(principal_id: str) -> str:
    """Set of the remote models a principal's /metrics series are labelled with (capped; the
    rest are folded into `other`). Only grows, so every series' counter does too."""
    return _p(f"principal:{principal_id}:metric_models")
