"""What every stage of measure.py shares: the prompts, the rows it prints, the fan-out of C
concurrent sequences."""

import json
import threading
import time
from collections.abc import Callable

PROMPTS = [
    "Write a long story about a dragon who lived in the mountains. Once upon a time,",
    "Explain how a steam engine works, step by step.",
    "List the planets of the solar system and describe each one.",
    "Describe a busy market in a medieval town.",
]
PER_SLOT = 640
SAMPLED = dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05)
ROWS: list[dict] = []


def emit(row: dict) -> None:
    print(json.dumps(row), flush=True)
    ROWS.append(row)


def fan_out(clients: int, one: Callable, temp: float) -> tuple[list[int], float]:
    """`one(i, temp, made)` in C threads at once: tokens each made, wall seconds."""
    made = [0] * clients
    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i, temp, made)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return made, time.perf_counter() - started


def rate_row(what: str, a, clients: int, temp: float, made: list[int], wall: float) -> dict:
    return {
        "what": what,
        "model": a.tag,
        "clients": clients,
        "temp": temp,
        "tok_s": round(sum(made) / wall, 1),
        "wall_s": round(wall, 3),
    }
