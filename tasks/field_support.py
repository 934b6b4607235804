"""The cells of the doors' field tables (tasks/openai/protocol/fields.py, the Responses and
Messages APIs' fields.py): what each provider behind a door does with a request field. `yes`
honoured; `400` refused naming the field (its no-op value passes); `tpl` (custom) honoured
through its placeholder in options.body_template, else 400."""

PROVIDERS = ("local", "openai", "anthropic", "openai_compatible", "custom")
ALL = ("yes",) * 5
NOWHERE = ("400",) * 5
SAMPLING = ("yes", "yes", "400", "yes", "tpl")  # the Messages API (SDK 2.x) has none
PENALTY = ("yes", "yes", "400", "yes", "400")
TOOLS = ("yes", "yes", "yes", "yes", "400")


def markdown_table(fields: dict) -> str:
    """A door's table (field -> (cells per PROVIDERS, note)) as the README shows it."""
    head = "| field | " + " | ".join(PROVIDERS) + " | notes |"
    rule = "|" + "---|" * (len(PROVIDERS) + 2)
    rows = [
        f"| `{name}` | " + " | ".join(cells) + f" | {note} |"
        for name, (cells, note) in sorted(fields.items())
    ]
    return "\n".join([head, rule, *rows])
