from sop_llm.access.apikeys.services import key_names
from sop_llm.access.apikeys.usage import usage_rows
from sop_llm.access.principals import bootstrap_names
from sop_llm.core.telemetry.stats import stats_days
from sop_llm.management.base import OpsCommand, table

COLUMNS = ["date", "created", "completed", "failed", "cancelled", "tokens_in", "tokens_out"]
USAGE_COLUMNS = [
    "date",
    "key_name",
    "model",
    "tasks",
    "prompt_tokens",
    "completion_tokens",
    "generation_seconds",
]


class Command(OpsCommand):
    help = "Daily counters for the last N days (kept 7 days); --by-key: usage per API key."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=7, choices=range(1, 8), metavar="1..7")
        parser.add_argument(
            "--by-key", action="store_true", help="usage per API key, day and model"
        )

    def handle(self, *args, **options):
        if options["by_key"]:
            names = {**bootstrap_names(), **key_names()}
            rows = usage_rows(days=options["days"], names=names)
            self.emit(rows, lambda r: table(r, USAGE_COLUMNS))
            return
        self.emit(stats_days(options["days"]), lambda rows: table(rows, COLUMNS))
