from monitor.services import monitor_status
from sop_llm.management.base import OpsCommand


class Command(OpsCommand):
    help = "Service overview: Redis, workers per lane, GPU, loaded model, queues, today's stats."

    def handle(self, *args, **options):
        self.emit(monitor_status(web=False), _human)


def _human(s: dict) -> list[str]:
    lines = [
        f"SOP LLM {s['version']}  uptime "
        + (f"{s['uptime_seconds']}s" if s["uptime_seconds"] is not None else "- (no live process)"),
        f"redis     {'ok' if s['redis']['ok'] else 'DOWN: ' + str(s['redis']['error'])}",
    ]
    if not s["redis"]["ok"]:
        return lines
    for lane, workers in s["workers"].items():
        lines.append(f"workers   {lane:<9} {len(workers)} alive")
    gpu = s["gpu"]
    lines.append(
        "gpu       "
        + (
            f"{gpu['name']} {gpu['memory_used_mb']}/{gpu['memory_total_mb']} MB"
            if gpu["available"]
            else gpu["reason"]
        )
    )
    model = s["loaded_model"]
    loaded = f"{model['name']} (n_ctx {model['params']['n_ctx']})" if model else "none loaded"
    lines.append(f"model     {loaded}")
    for lane, q in s["queues"].items():
        lines.append(f"queue     {lane:<9} {q['pending']} pending, {len(q['processing'])} running")
    t = s["today"]
    lines.append(
        f"today     {t.get('created', 0)} created, {t.get('completed', 0)} completed, "
        f"{t.get('failed', 0)} failed, {t.get('cancelled', 0)} cancelled, "
        f"{t.get('tokens_out', 0)} tokens out"
    )
    lines.append(f"webhooks  {s['dead_letters']} dead letters")
    return lines
