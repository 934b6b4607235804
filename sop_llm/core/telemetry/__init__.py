"""The write side of observability: events, counters and logs, used by every layer above."""
