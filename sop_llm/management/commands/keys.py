from django.core.management.base import CommandError
from rest_framework.exceptions import ValidationError

from sop_llm.access.apikeys.serializers import KeyCreateSerializer
from sop_llm.access.apikeys.services import key_create, key_list, key_revoke
from sop_llm.core.errors import to_service_error
from sop_llm.management.base import OpsCommand, subcommand, table

COLUMNS = ["id", "name", "scopes", "state", "expires_at", "limits"]
LIMITS = ("rpm", "tokens_per_day", "max_queued", "max_priority")


class Command(OpsCommand):
    help = "Managed API keys: create (the key is printed once), list, revoke."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = subcommand(sub, "create", help="create a key and print it (once)")
        create.add_argument("name")
        create.add_argument("--scopes", required=True, help="comma-separated: tasks,monitor,...")
        create.add_argument("--expires-at", help="ISO 8601, e.g. 2027-01-31T00:00:00Z")
        for limit in LIMITS:
            create.add_argument(f"--{limit.replace('_', '-')}", type=int)
        subcommand(sub, "list", help="every managed key (never the keys themselves)")
        revoke = subcommand(sub, "revoke", help="revoke a key by its id, at once everywhere")
        revoke.add_argument("key_id")

    def handle(self, *args, action, **options):
        if action == "create":
            record, key = key_create(**_validated(options))
            self.emit({**record, "key": key}, _created)
        elif action == "list":
            self.emit(key_list(), lambda rows: table([_row(r) for r in rows], COLUMNS))
        else:
            self.emit(key_revoke(key_id=options["key_id"]), lambda r: [f"revoked {r['id']}"])


def _validated(options: dict) -> dict:
    """The same checks, and the same messages, as POST /api/v1/keys."""
    data = {"name": options["name"], "scopes": options["scopes"].split(",")}
    if options["expires_at"]:
        data["expires_at"] = options["expires_at"]
    limits = {name: options[name] for name in LIMITS if options[name] is not None}
    if limits:
        data["limits"] = limits
    serializer = KeyCreateSerializer(data=data)
    try:
        serializer.is_valid(raise_exception=True)
    except ValidationError as exc:
        error = to_service_error(exc)
        raise CommandError(f"{error.field}: {error.message}") from None
    return serializer.validated_data


def _created(record: dict) -> list[str]:
    return [
        f"created {record['id']} ({record['name']}, scopes: {','.join(record['scopes'])})",
        f"key: {record['key']}",
        "This is the only time the key is shown: store it now.",
    ]


def _row(record: dict) -> dict:
    limits = ",".join(f"{k}={v}" for k, v in record["limits"].items() if v is not None)
    expires = record["expires_at"] or "never"
    return {
        **record,
        "scopes": ",".join(record["scopes"]),
        "limits": limits or "-",
        "expires_at": expires,
    }
