#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sop_llm.settings")
    from django.core.management import execute_from_command_line

    from sop_llm.core.config import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:  # one clear line, not a traceback
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
