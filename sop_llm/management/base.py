"""Operator commands: human-readable by default, `--json` for scripts, one shape for errors."""

import json
import sys

import redis
from django.core.management.base import BaseCommand, CommandError

from sop_llm.core.errors import ServiceError


class OpsCommand(BaseCommand):
    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")
        return parser

    def emit(self, data, human) -> None:
        """Print `data` as JSON (--json) or as the lines `human(data)` returns."""
        if self.options.get("json"):
            self.stdout.write(json.dumps(data, indent=2, default=str))
        else:
            for line in human(data):
                self.stdout.write(line)

    def execute(self, *args, **options):
        self.options = options
        try:
            return super().execute(*args, **options)
        except ServiceError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise CommandError(f"redis_unavailable: {exc} (is REDIS_URL right?)") from None

    def confirm(self, question: str) -> bool:
        if self.options.get("yes"):
            return True
        self.stdout.write(f"{question} [y/N] ", ending="")
        self.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        return answer in ("y", "yes")


def subcommand(sub, name: str, help: str):
    """A subcommand that takes --json after its own arguments too (`models list --json`)."""
    parser = sub.add_parser(name, help=help)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    return parser


def table(rows: list[dict], columns: list[str]) -> list[str]:
    if not rows:
        return ["(none)"]
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    head = "  ".join(c.upper().ljust(widths[c]) for c in columns)
    return [head] + ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
