"""The task processor: what an rq job does with the task it claims."""

import contextlib
import dataclasses
import logging
import time
from dataclasses import asdict

import redis

from grammars.formats import format_hash, response_format_from
from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from sop_llm.core.telemetry.events import TokenStream, publish
from sop_llm.core.telemetry.logs import current_task_id
from sop_llm.core.telemetry.stats import observe
from sop_llm.providers.fallback import AllAttemptsFailed, Attempt, Target, generate_with_fallback
from sop_llm.providers.types import (
    GenerateRequest,
    GenerateResult,
    Message,
    Resume,
    SamplingParams,
)
from tasks import lifecycle, store
from tasks.charges import charged, killed_attempt
from tasks.checkpoints import checkpoint_load, checkpointing, resume_for
from tasks.estimate import completion_record
from tasks.result import TaskResult
from tasks.sealing import unseal
from tasks.store import REQUEST_EXTRAS, Effects, Task
from tasks.worker import identity
from tasks.worker.cancel import cancel_watch
from tasks.worker.preemption import preemption_flags

log = logging.getLogger(__name__)
DURATIONS_KEPT = 50


def task_process_next(*, lane: str, preferred_model: str = "", gpu_id: str = "") -> str | None:
    """Claim the best pending task of the lane and run it to a final state."""
    task = task_claim_next(lane=lane, preferred_model=preferred_model, gpu_id=gpu_id)
    return None if task is None else task_run_claimed(task)


def task_claim_next(*, lane: str, preferred_model: str = "", gpu_id: str = "") -> Task | None:
    """queued -> processing for the best task of the lane, by this worker."""
    worker = identity.current_worker_name()
    cancel_watch().listen()
    task = lifecycle.task_claim(
        lane=lane, worker=worker, preferred_model=preferred_model, gpu_id=gpu_id
    )
    return None if task is None else _claimed([task], lane)[0]


def task_claim_batch(
    *, lane: str, limit: int, preferred_model: str = "", gpu_id: str = ""
) -> list[Task]:
    """As task_claim_next, up to `limit` tasks in one round trip (a slot scheduler's free
    slots): the best task, then more of its model while there are."""
    worker = identity.current_worker_name()
    cancel_watch().listen()
    tasks = lifecycle.task_claim_many(
        lane=lane, worker=worker, limit=limit, preferred_model=preferred_model, gpu_id=gpu_id
    )
    return _claimed(tasks, lane) if tasks else []


def _claimed(tasks: list[Task], lane: str) -> list[Task]:
    for task in tasks:  # listed in the liveness record from the claim on, held or running
        identity.running_add(task.task_id)
    if lane == "gpu":
        from models_gpu.guard import gpu_guard

        gpu_guard().intend(tasks[0].model_key)
    return tasks


def task_run_claimed(task: Task) -> str:
    """Run a claimed task to a final state; never leaves it `processing`."""
    identity.running_add(task.task_id)
    try:
        _run(task)
    except (KeyboardInterrupt, SystemExit):
        lost = killed_attempt(_progressed(task), "its worker was stopped mid-run")
        lifecycle.task_requeue(task, reason="worker_stopped", lost=lost)
        raise
    except BaseException as exc:  # rq's job timeout included: never leave it `processing`
        lifecycle.task_fail(task, code="internal", message=f"the worker failed: {exc!r:.200}")
        raise
    finally:
        identity.running_remove(task.task_id)
    return task.task_id


def _progressed(task: Task) -> Task:
    """The claimed task with the progress its run recorded (what the stopped run is charged)."""
    with contextlib.suppress(redis.RedisError):
        fresh = store.load(task.task_id)
        if fresh is not None:
            return dataclasses.replace(task, progress=fresh.progress)
    return task


def build_request(task: Task) -> tuple[GenerateRequest, list[Target]]:
    stored, secrets = task.request, unseal(task.secrets)
    options = {**stored.get("options", {}), **secrets.get("options", {})}
    targets = [Target(task.provider, task.model, options)]
    fallback_secrets = secrets.get("fallback") or [{}] * len(stored.get("fallback", []))
    for target, secret in zip(stored.get("fallback", []), fallback_secrets, strict=False):
        targets.append(
            Target(target["provider"], target["model"], {**target.get("options", {}), **secret})
        )
    params = dict(stored.get("params") or {})
    params["stop"] = tuple(params.get("stop") or ())
    params["given"] = tuple(params.get("given") or ())
    request = GenerateRequest(
        model=task.model,
        messages=[Message(**m) for m in stored["messages"]] if stored.get("messages") else None,
        prompt=stored.get("prompt"),
        params=SamplingParams(**params),
        response_format=response_format_from(stored.get("response_format")),
        timeout_seconds=float(stored["timeout_seconds"]),
        options=options,
        **{name: stored[name] for name in REQUEST_EXTRAS if name in stored},
    )
    return request, targets


def _run(task: Task) -> None:
    token = current_task_id.set(task.task_id)
    try:
        _run_task(task)
    finally:
        current_task_id.reset(token)


def _run_task(task: Task) -> None:
    log.info("task %s started on %s", task.task_id, task.worker)
    request, targets = build_request(task)
    watch = cancel_watch().watch(task.task_id, requested=bool(task.cancel_requested))
    request.is_cancelled = watch.is_set
    request.on_token = tokens = TokenStream(task.task_id, run=task.run)
    if task.lane == "gpu":  # a local generation: checkpointed, resumable, preemptible
        request.checkpoint = checkpointing(tokens.checkpoint)
        request.resume = _resume(task, tokens)
        request.is_preempted = preemption_flags().check(task.task_id)
    try:
        result, attempts = generate_with_fallback(
            targets=targets, request=request, on_attempt=lambda a: _on_attempt(task, a, tokens)
        )
    except AllAttemptsFailed as exc:
        tokens.close()
        _finish_failed(task, exc, tokens)
        return
    finally:
        cancel_watch().unwatch(task.task_id)
        preemption_flags().forget(task.task_id)
    tokens.close()
    _complete(task, request, result, attempts)


def _resume(task: Task, tokens: TokenStream) -> Resume | None:
    """An earlier run's checkpoint, if any: the engine goes on after its tokens, and the
    stream after its text (the `resumed` timeline entry says from which token)."""
    if task.run <= 1:
        return None
    kept = checkpoint_load(task_id=task.task_id)
    resume = resume_for(task, kept)
    if resume is None:
        return None

    def taken() -> None:
        tokens.offset = tokens.resumed_at = kept.emitted
        with contextlib.suppress(redis.RedisError):  # telemetry must not stop the run
            pipe = get_redis().pipeline(transaction=False)
            store.timeline_add(task.task_id, "resumed", pipe=pipe, run=task.run, **kept.summary())
            publish("task.resumed", pipe=pipe, task_id=task.task_id, **kept.summary())
            pipe.execute()

    return dataclasses.replace(resume, taken=taken)


def _on_attempt(task: Task, attempt: Attempt, tokens: TokenStream) -> None:
    if attempt.outcome == "ok":
        return  # the successful attempt is written with the completion, in its round trip
    with contextlib.suppress(redis.RedisError):  # telemetry must not end the fallback chain
        store.timeline_add(task.task_id, "attempt", **attempt.to_dict())
    if attempt.outcome != "error":
        return
    if attempt.error_code not in ("cancelled", "preempted"):  # those keep what they made
        tokens.next_attempt()  # whatever streamed of a failed attempt is not the answer
    log.warning(
        "task %s: %s (%s) attempt %d failed [%s/%s]: %s",
        task.task_id,
        attempt.provider,
        attempt.model,
        attempt.try_number,
        attempt.error_code,
        attempt.error_class,
        attempt.message,
    )


def _complete(task: Task, request: GenerateRequest, result: GenerateResult, attempts) -> None:
    timings = _timings(task, result)
    effects = _completion_effects(task, timings, attempts[-1], result.usage.completion_tokens)
    tried = _all_attempts(task, attempts)
    done = lifecycle.task_complete(
        task,
        fields={
            "result": TaskResult.from_generated(result).record(),
            "usage": _usage(result),
            "attempts": tried,
            "charged": charged(tried),
            "timings": timings,
            "repro": _repro(task, request, result),
        },
        effects=effects,
    )
    if not done:
        log.warning(
            "task %s finished but was already %s; result dropped", task.task_id, task.status
        )
        return
    log.info(
        "task %s completed by %s/%s: %d tokens in %.0f ms",
        task.task_id,
        result.provider,
        result.model,
        result.usage.completion_tokens,
        timings["total_ms"],
    )


def _all_attempts(task: Task, attempts: list[Attempt]) -> list[dict]:
    """This run's attempts after those of earlier runs whose worker was lost."""
    return [*(task.lost_attempts or []), *(a.to_dict() for a in attempts)]


def _usage(result: GenerateResult) -> dict:
    usage = {**asdict(result.usage), "total_tokens": result.usage.total_tokens}
    if result.timings.get("cached_prompt_tokens") is not None:  # reused from the KV cache
        usage["cached_prompt_tokens"] = result.timings["cached_prompt_tokens"]
    return usage


def _timings(task: Task, result: GenerateResult) -> dict:
    generation_ms = result.timings.get("generation_ms") or 0
    tokens_out = result.usage.completion_tokens
    return {
        "queue_wait_ms": round(((task.started_at or 0) - (task.queued_at or 0)) * 1000, 1),
        "total_ms": round((time.time() - (task.started_at or time.time())) * 1000, 1),
        "load_ms": result.timings.get("load_ms", 0.0),
        "hot_path": result.timings.get("hot_path"),
        "generation_ms": generation_ms,
        "tokens_per_second": round(tokens_out / (generation_ms / 1000), 2)
        if generation_ms
        else None,
        **{k: v for k, v in result.timings.items() if k not in ("generation_ms", "load_ms")},
    }


def _completion_effects(task: Task, timings: dict, last: Attempt, tokens_out: int) -> Effects:
    """The winning attempt, durations and histograms ride in the completion's atomic step."""
    effects = Effects()
    store.timeline_add(task.task_id, "attempt", pipe=effects, **last.to_dict())
    if timings.get("load_ms") or timings.get("hot_path") is not None:
        store.timeline_add(
            task.task_id,
            "model",
            pipe=effects,
            hot_path=timings["hot_path"],
            load_ms=timings["load_ms"],
        )
    record = completion_record(timings, tokens_out, task.max_tokens)
    effects.lpush(keys.lane_durations(task.lane), record)
    effects.ltrim(keys.lane_durations(task.lane), 0, DURATIONS_KEPT - 1)
    observe(effects, "task_duration_ms", timings["total_ms"])
    observe(effects, "tokens_per_second", timings["tokens_per_second"])
    observe(effects, "queue_wait_ms", timings["queue_wait_ms"])
    return effects


def _repro(task: Task, request: GenerateRequest, result: GenerateResult) -> dict:
    return {
        "provider": result.provider,
        "model": result.model,
        "params": asdict(request.params),
        "seed": request.params.seed,
        "response_format_hash": format_hash(task.request.get("response_format")),
        **result.meta.get("repro", {}),
    }


def _finish_failed(task: Task, exc: AllAttemptsFailed, tokens: TokenStream) -> None:
    """Failed or cancelled: every attempt is charged, and what the last one generated (a
    truncated answer's text so far, its usage and timings) is kept in the report."""
    if exc.last.code == "preempted":
        _finish_preempted(task, exc)
        return
    tried = _all_attempts(task, exc.attempts)
    kept = {"attempts": tried, "charged": charged(tried), **_partial(task, exc.last.partial)}
    if exc.last.code == "cancelled":
        partial = exc.last.partial
        kept["result"] = TaskResult.cancelled(tokens.attempt_text).record()
        prompt = partial.usage.prompt_tokens if partial is not None else 0
        kept["usage"] = {"prompt_tokens": prompt, "completion_tokens": tokens.attempt_tokens}
        kept["usage"]["total_tokens"] = prompt + tokens.attempt_tokens
        message = "cancelled while running"
        lifecycle.task_cancel(task, code="cancelled", message=message, running=True, **kept)
        return
    log.warning("task %s failed: [%s] %s", task.task_id, exc.last.code, exc.last.message)
    lifecycle.task_fail(task, code=exc.last.code, message=exc.last.message, **kept)


def _partial(task: Task, partial: GenerateResult | None) -> dict:
    if partial is None:
        return {}
    result = TaskResult.partial(partial).record()
    return {"result": result, "usage": _usage(partial), "timings": _timings(task, partial)}


def _finish_preempted(task: Task, exc: AllAttemptsFailed) -> None:
    """Back to the queue at its old place with its checkpoint; its attempts so far are kept
    (and charged) as a lost run's are."""
    partial, last = exc.last.partial, exc.attempts[-1] if exc.attempts else None
    record = (partial.meta.get("checkpoint") if partial else None) or {"tokens": [], "emitted": 0}
    if last is None or (last.provider, last.model) != (task.provider, task.model):
        record = {"tokens": [], "emitted": 0}  # a fallback's tokens: the next run starts over
    asked = preemption_flags().asked(task.task_id)
    lost = [{**a.to_dict(), "outcome": "preempted"} for a in exc.attempts]
    by = asked.by if asked else ""
    if lifecycle.task_preempt(task, by=by, lost=lost, checkpoint=record):
        log.info("task %s preempted by %s after %d tokens", task.task_id, by, len(record["tokens"]))
