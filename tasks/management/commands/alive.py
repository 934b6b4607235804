from django.core.management.base import CommandError

from sop_llm.core import keys
from sop_llm.core.procs import hostname
from sop_llm.core.redis import get_redis
from sop_llm.management.base import OpsCommand
from tasks.liveness import worker_alive


class Command(OpsCommand):
    help = "Container health check: exit 0 when a worker on this host has a fresh liveness key."

    def handle(self, *args, **options):
        host = hostname()
        alive = []
        for key in get_redis().scan_iter(match=keys.worker_alive("*"), count=1000):
            record = get_redis().get(key)
            if record and f'"host": "{host}"' in record and worker_alive("", record):
                alive.append(key.rsplit(":", 1)[-1])
        if not alive:
            raise CommandError(f"no live worker on {host}")
        self.emit(
            {"host": host, "workers": alive},
            lambda d: [f"{len(d['workers'])} live worker(s) on {d['host']}"],
        )
