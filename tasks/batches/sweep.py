"""Recovery for batches, run with the task recovery (worker start-up and heartbeats): a batch
that needs a runner and has none (its runner was killed) gets one; a batch whose lines are all
written but that never ended (its last line's process died in between) is ended."""

import logging

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks.batches.finish import batch_settle
from tasks.batches.records import batch_load
from tasks.batches.runner import batch_schedule, lease_break_if_dead, needs_runner

log = logging.getLogger(__name__)


def batches_recover() -> dict:
    report: dict = {"scheduled": [], "settled": []}
    client = get_redis()
    for batch_id in client.smembers(keys.batches_active()):
        batch = batch_load(batch_id)
        if batch is None or batch.final:
            client.srem(keys.batches_active(), batch_id)
        elif needs_runner(batch):
            if lease_break_if_dead(batch_id):
                batch_schedule(batch_id=batch_id)
                report["scheduled"].append(batch_id)
        elif batch_settle(batch_id=batch_id):
            report["settled"].append(batch_id)
    if report["scheduled"] or report["settled"]:
        log.warning("batch recovery: %s", report)
    return report
