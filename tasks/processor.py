"""The task processor: what an rq job does with the task it claims."""

import logging
import time
from dataclasses import asdict

from grammars.formats import format_hash, response_format_from
from monitor.events import TokenStream, publish
from monitor.logs import current_task_id
from monitor.stats import observe
from sop_llm import keys
from sop_llm.providers.fallback import AllAttemptsFailed, Attempt, Target, generate_with_fallback
from sop_llm.providers.types import GenerateRequest, GenerateResult, Message, SamplingParams
from sop_llm.redis import get_redis
from tasks import queue, store
from tasks.cancel import cancel_watch
from tasks.sealing import unseal
from tasks.services import finish_side_effects
from tasks.worker_identity import current_worker_name

log = logging.getLogger(__name__)
DURATIONS_KEPT = 50


class Requeued(Exception):
    """The worker is stopping: the task went back to the queue instead of failing."""


def task_process_next(*, lane: str, preferred_model: str = "") -> str | None:
    """Claim the best pending task of the lane and run it to a final state."""
    task_id, expired = queue.claim(lane, current_worker_name(), preferred_model)
    for expired_id in expired:
        _finish_expired(expired_id)
    if task_id is None:
        return None
    try:
        _run(task_id, lane)
    except (KeyboardInterrupt, SystemExit):
        task_requeue(task_id=task_id, lane=lane, reason="worker_stopped")
        raise
    except BaseException as exc:  # rq's job timeout included: never leave it `processing`
        _fail(task_id, lane, "internal", f"the worker failed: {type(exc).__name__}")
        raise
    return task_id


def build_request(task: dict) -> tuple[GenerateRequest, list[Target]]:
    stored, secrets = task["request"], unseal(task.get("secrets", ""))
    options = {**stored.get("options", {}), **secrets.get("options", {})}
    targets = [Target(task["provider"], task["model"], options)]
    fallback_secrets = secrets.get("fallback") or [{}] * len(stored.get("fallback", []))
    for target, secret in zip(stored.get("fallback", []), fallback_secrets, strict=False):
        targets.append(
            Target(target["provider"], target["model"], {**target.get("options", {}), **secret})
        )
    params = dict(stored.get("params") or {})
    params["stop"] = tuple(params.get("stop") or ())
    request = GenerateRequest(
        model=task["model"],
        messages=[Message(**m) for m in stored["messages"]] if stored.get("messages") else None,
        prompt=stored.get("prompt"),
        params=SamplingParams(**params),
        response_format=response_format_from(stored.get("response_format")),
        timeout_seconds=float(stored["timeout_seconds"]),
        options=options,
    )
    return request, targets


def _run(task_id: str, lane: str) -> None:
    token = current_task_id.set(task_id)
    try:
        _run_task(task_id, lane)
    finally:
        current_task_id.reset(token)


def _run_task(task_id: str, lane: str) -> None:
    task = store.load(task_id)
    started = float(task["started_at"])
    queue_wait_ms = round((started - float(task["queued_at"])) * 1000, 1)
    pipe = get_redis().pipeline(transaction=False)
    store.timeline_add(
        task_id, "dequeued", pipe=pipe, worker=task.get("worker"), queue_wait_ms=queue_wait_ms
    )
    publish("task.started", pipe=pipe, task_id=task_id, lane=lane, worker=task.get("worker"))
    pipe.execute()
    request, targets = build_request(task)
    log.info("task %s started on %s (queued %.0f ms)", task_id, task.get("worker"), queue_wait_ms)
    watch = cancel_watch().watch(task_id)
    request.is_cancelled = watch.is_set
    request.on_token = tokens = TokenStream(task_id)
    try:
        result, attempts = generate_with_fallback(
            targets=targets, request=request, on_attempt=lambda a: _on_attempt(task_id, a)
        )
    except AllAttemptsFailed as exc:
        tokens.close()
        _finish_failed(task_id, lane, exc)
        return
    finally:
        cancel_watch().unwatch(task_id)
    tokens.close()
    _complete(task, lane, request, result, attempts, queue_wait_ms)


def _on_attempt(task_id: str, attempt: Attempt) -> None:
    store.timeline_add(task_id, "attempt", **attempt.to_dict())
    if attempt.outcome == "error":
        log.warning(
            "task %s: %s (%s) attempt %d failed [%s/%s]: %s",
            task_id,
            attempt.provider,
            attempt.model,
            attempt.try_number,
            attempt.error_code,
            attempt.error_class,
            attempt.message,
        )


def _complete(task, lane, request, result: GenerateResult, attempts, queue_wait_ms) -> None:
    task_id = task["task_id"]
    total_ms = round((time.time() - float(task["started_at"])) * 1000, 1)
    generation_ms = result.timings.get("generation_ms") or 0
    timings = {
        "queue_wait_ms": queue_wait_ms,
        "total_ms": total_ms,
        "load_ms": result.timings.get("load_ms", 0.0),
        "hot_path": result.timings.get("hot_path"),
        "generation_ms": generation_ms,
        "tokens_per_second": round(result.usage.completion_tokens / (generation_ms / 1000), 2)
        if generation_ms
        else None,
        **{k: v for k, v in result.timings.items() if k not in ("generation_ms", "load_ms")},
    }
    done, previous = store.transition(
        task_id,
        "completed",
        result={
            "text": result.text,
            "parsed": result.parsed,
            "finish_reason": result.finish_reason,
            "provider": result.provider,
            "model": result.model,
            "response_id": result.response_id,
            **result.meta.get("structured", {}),
        },
        usage={**asdict(result.usage), "total_tokens": result.usage.total_tokens},
        attempts=[a.to_dict() for a in attempts],
        timings=timings,
        repro=_repro(task, request, result),
    )
    if not done:
        log.warning("task %s finished but was already %s; result dropped", task_id, previous)
        return
    _record_duration(lane, task_id, timings)
    log.info(
        "task %s completed by %s/%s: %d tokens in %.0f ms",
        task_id,
        result.provider,
        result.model,
        result.usage.completion_tokens,
        total_ms,
    )
    if timings.get("load_ms") or timings.get("hot_path") is not None:
        store.timeline_add(
            task_id, "model", hot_path=timings["hot_path"], load_ms=timings["load_ms"]
        )
    finish_side_effects(
        task_id,
        "completed",
        provider=result.provider,
        webhook_url=task.get("webhook_url"),
        extra_stats={
            "tokens_in": result.usage.prompt_tokens,
            "tokens_out": result.usage.completion_tokens,
        },
    )


def _repro(task: dict, request: GenerateRequest, result: GenerateResult) -> dict:
    return {
        "provider": result.provider,
        "model": result.model,
        "params": asdict(request.params),
        "seed": request.params.seed,
        "response_format_hash": format_hash(task["request"].get("response_format")),
        **result.meta.get("repro", {}),
    }


def _record_duration(lane: str, task_id: str, timings: dict) -> None:
    pipe = get_redis().pipeline(transaction=False)
    pipe.lpush(keys.lane_durations(lane), timings["total_ms"])
    observe(pipe, "task_duration_ms", timings["total_ms"])
    observe(pipe, "tokens_per_second", timings["tokens_per_second"])
    observe(pipe, "queue_wait_ms", timings["queue_wait_ms"])
    pipe.ltrim(keys.lane_durations(lane), 0, DURATIONS_KEPT - 1)
    queue.release(lane, task_id, pipe=pipe)
    pipe.execute()


def _finish_failed(task_id: str, lane: str, exc: AllAttemptsFailed) -> None:
    attempts = [a.to_dict() for a in exc.attempts]
    if exc.last.code == "cancelled":
        error = {"code": "cancelled", "message": "cancelled while running"}
        done, _ = store.transition(task_id, "cancelled", error=error, attempts=attempts)
        status = "cancelled"
    else:
        error = {"code": exc.last.code, "message": exc.last.message}
        done, _ = store.transition(task_id, "failed", error=error, attempts=attempts)
        status = "failed"
        log.warning("task %s failed: [%s] %s", task_id, exc.last.code, exc.last.message)
    queue.release(lane, task_id)
    if done:
        task = store.load(task_id)
        finish_side_effects(task_id, status, provider=task["provider"])


def _fail(task_id: str, lane: str, code: str, message: str) -> None:
    done, _ = store.transition(task_id, "failed", error={"code": code, "message": message})
    queue.release(lane, task_id)
    if done:
        finish_side_effects(task_id, "failed", provider=store.load(task_id)["provider"])


def _finish_expired(task_id: str) -> None:
    task = store.load(task_id)
    if task is not None:
        finish_side_effects(task_id, "failed", provider=task["provider"])


def task_requeue(*, task_id: str, lane: str, reason: str) -> bool:
    """Put a task whose worker went away back in its lane, at its original place."""
    task = store.load(task_id)
    done, _ = store.transition(
        task_id,
        "queued",
        worker="",
        started_at="",
        crash_count=int(task.get("crash_count") or 0) + 1,
    )
    pipe = get_redis().pipeline(transaction=False)
    queue.release(lane, task_id, pipe=pipe)
    if done:
        pipe.zadd(keys.queue_pending(lane), {task_id: float(task["score"])})
        store.timeline_add(task_id, "requeued", pipe=pipe, reason=reason)
    pipe.execute()
    if done:
        _publish("task.queued", task_id, lane=lane, reason=reason)
        queue.wake(lane)
    return done


def _publish(type_: str, task_id: str, **data) -> None:
    from monitor.events import publish

    publish(type_, task_id=task_id, **data)
