"""The Markdown table of a GPU run (measure.py's JSON lines), for docs/BENCHMARKS.md.

    python table.py OUT/rows-270m.jsonl OUT/rows-4b.jsonl > table.md

One row per model shape, what ran and temperature; one column per concurrency level; aggregate
generated tokens/s. Errors are listed under the table, not dropped.
"""

import json
import sys
from pathlib import Path

SAVED = Path(__file__).resolve().parent.parent / "results" / "gpu.md"

NAMES = {
    "cpp_batched_bench": "llama.cpp C++ ceiling (llama-batched-bench)",
    "llama_server": "llama-server (CPU sampling)",
    "llama_server_bs": "llama-server --backend-sampling",
    "ours_fa1": "our BatchEngine",
    "ours_fa0": "our BatchEngine (flash attention off)",
    "proto_backend_fa1": "reference loop, backend sampling",
    "service": "the whole service (/v1/completions)",
}


def read(paths: list[str]) -> list[dict]:
    rows = []
    for path in paths:
        with open(path) as fh:
            rows += [json.loads(line) for line in fh if line.startswith("{")]
    return rows


def markdown(rows: list[dict]) -> str:
    measured = [r for r in rows if "tok_s" in r and r.get("clients")]
    levels = sorted({r["clients"] for r in measured})
    cells: dict[tuple, dict[int, str]] = {}
    for r in measured:
        key = (r["model"], NAMES.get(r["what"], r["what"]), r.get("temp", "-"))
        cells.setdefault(key, {})[r["clients"]] = _cell(r)
    lines = [
        "| model shape | what | temperature | " + " | ".join(f"{c} seq" for c in levels) + " |",
        "|---|---|---|" + "---|" * len(levels),
    ]
    for (model, what, temp), by_level in cells.items():
        values = " | ".join(by_level.get(c, "") for c in levels)
        lines.append(f"| {model} | {what} | {temp} | {values} |")
    errors = [r for r in rows if "error" in r]
    lines += ["", *[f"- {r['what']} ({r.get('model', '?')}): {r['error'][:200]}" for r in errors]]
    return "\n".join(lines).rstrip() + "\n"


def gpu_lines() -> list[str]:
    """docs/BENCHMARKS.md's GPU section: the latest saved GPU table, if any."""
    if not SAVED.exists():
        return []
    return ["## On a GPU (`make bench-gpu`, bench/gpu)", "", SAVED.read_text().rstrip(), ""]


def _cell(row: dict) -> str:
    rate = row["tok_s"]
    text = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"  # a CPU dry run's rates are tiny
    if row.get("python_ms_step") is not None:
        text += f" ({row['python_ms_step']:.2f} ms py/step)"
    if row.get("mean_tokens") is not None:
        text += f" ({row['mean_tokens']:.0f} tok/answer)"
    return text


if __name__ == "__main__":
    sys.stdout.write(markdown(read([a for a in sys.argv[1:] if a != "--save"])))
