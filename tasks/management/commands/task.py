from sop_llm.management.base import OpsCommand, subcommand
from tasks.result import TaskResult
from tasks.services import task_cancel, task_report


class Command(OpsCommand):
    help = "Show a task's report, or cancel it."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        subcommand(sub, "show", help="the full report").add_argument("task_id")
        subcommand(sub, "cancel", help="cancel a queued or running task").add_argument("task_id")

    def handle(self, *args, action, task_id, **options):
        if action == "show":
            self.emit(task_report(task_id=task_id), _report)
        else:
            self.emit(
                task_cancel(task_id=task_id),
                lambda t: [
                    f"task {t['task_id']} is now {t['status']}"
                    + (" (cancel requested)" if t.get("cancel_requested") else "")
                ],
            )


def _report(r: dict) -> list[str]:
    lines = [
        f"task      {r['task_id']}  [{r['status']}]",
        f"provider  {r['provider']} / {r['model']}  (lane {r['lane']}, priority {r['priority']})",
    ]
    if result := TaskResult.from_record(r["result"]):
        lines.append(f"result    {result.text[:200]!r} ({result.finish_reason})")
    if r["error"]:
        lines.append(f"error     {r['error']['code']}: {r['error']['message']}")
    if r["usage"]:
        lines.append(
            f"usage     {r['usage']['prompt_tokens']} in / {r['usage']['completion_tokens']} out"
        )
    if r["timings"]:
        lines.append("timings   " + ", ".join(f"{k}={v}" for k, v in r["timings"].items()))
    lines.append("timeline")
    lines += [
        f"  {e['at']}  {e['event']}" + (f"  {e.get('error_code') or ''}".rstrip())
        for e in r["timeline"]
    ]
    return lines
