from django.core.management.base import CommandError

from sop_llm.core.lanes import TASK_LANES as LANES
from sop_llm.management.base import OpsCommand, subcommand, table
from tasks.snapshot import queue_snapshot
from tasks.worker.ops import queue_purge, stuck_resolve, stuck_tasks


class Command(OpsCommand):
    help = "Pending tasks per lane; purge a lane; requeue or fail stuck `processing` tasks."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        subcommand(sub, "list", help="pending tasks of each lane in run order")
        purge = subcommand(sub, "purge", help="cancel every pending task of a lane")
        purge.add_argument("lane", choices=LANES)
        purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        stuck = subcommand(sub, "stuck", help="tasks whose worker died; fix them")
        group = stuck.add_mutually_exclusive_group()
        group.add_argument(
            "--recover",
            action="store_true",
            help="requeue within TASK_MAX_ATTEMPTS, else fail (the automatic rule)",
        )
        group.add_argument("--requeue", action="store_true", help="requeue them all")
        group.add_argument("--fail", action="store_true", help="fail them all (worker_lost)")

    def handle(self, *args, action, **options):
        if action == "list":
            self.emit(queue_snapshot(), _lanes)
        elif action == "purge":
            self._purge(options["lane"])
        else:
            self._stuck(options)

    def _purge(self, lane: str) -> None:
        if not self.confirm(f"Cancel every pending task of the {lane} lane?"):
            raise CommandError("aborted: nothing was purged")
        purged = queue_purge(lane=lane)
        self.emit(
            {"lane": lane, "purged": purged},
            lambda d: [f"purged {len(d['purged'])} task(s) from {d['lane']}"],
        )

    def _stuck(self, options) -> None:
        action = next((a for a in ("recover", "requeue", "fail") if options[a]), None)
        if action is None:
            self.emit(
                stuck_tasks(),
                lambda rows: table(rows, ["task_id", "lane", "worker", "running_for_s"]),
            )
            return
        report = stuck_resolve(action=action)
        self.emit(report, lambda r: [f"requeued {len(r['requeued'])}, failed {len(r['failed'])}"])


def _lanes(data: dict) -> list[str]:
    lines = []
    for lane, info in data["lanes"].items():
        lines.append(f"{lane}: {info['depth']} pending, {len(info['processing'])} running")
        lines += [
            "  " + line
            for line in table(
                info["pending"], ["position", "task_id", "priority", "provider", "model"]
            )
        ]
    return lines
