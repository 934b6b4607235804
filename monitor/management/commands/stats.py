from sop_llm.management.base import OpsCommand, table
from sop_llm.telemetry.stats import stats_days

COLUMNS = ["date", "created", "completed", "failed", "cancelled", "tokens_in", "tokens_out"]


class Command(OpsCommand):
    help = "Daily counters for the last N days (kept 7 days)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=7, choices=range(1, 8), metavar="1..7")

    def handle(self, *args, **options):
        self.emit(stats_days(options["days"]), lambda rows: table(rows, COLUMNS))
