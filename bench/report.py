"""The Markdown table of a benchmark run, with each target and whether it held."""


def _g(data: dict, *path, default=None):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


TARGETS = [
    ("engine", "service/direct tokens/s (128 tokens)", ("ratio",), ">=", 0.95, "x"),
    ("engine", "added latency p50, 8 tokens", ("added_latency_ms_p50",), "<=", 30, "ms"),
    ("peer", "plain tokens/s vs llama_cpp.server", ("plain_ratio",), ">=", 1.0, "x"),
    ("peer", "json_schema tokens/s vs llama_cpp.server", ("structured_ratio",), ">=", 2.5, "x"),
    ("structured", "llguidance / unconstrained tokens/s", ("llguidance_ratio",), ">=", 0.9, "x"),
    ("load", "hot path load time", ("hot_path_load_ms",), "<=", 0, "ms"),
    (
        "throughput",
        "tasks/s end to end, 4 remote workers",
        ("4_workers", "tasks_per_s"),
        ">=",
        200,
        "/s",
    ),
    ("throughput", "POST p99 at 50 clients", ("post", "latency_ms", "p99"), "<=", 50, "ms"),
    ("scale", "ordering correct with 10k queued", ("ordering_correct",), "==", True, ""),
    (
        "scale",
        "monitor/status p50 with 10k queued",
        ("endpoint_ms", "/api/v1/monitor/status", "median"),
        "<=",
        100,
        "ms",
    ),
    (
        "scale",
        "monitor/queue p50 with 10k queued",
        ("endpoint_ms", "/api/v1/monitor/queue", "median"),
        "<=",
        100,
        "ms",
    ),
]


def verdicts(results: dict) -> list[dict]:
    rows = []
    for scenario, label, path, op, target, unit in TARGETS:
        value = _g(results.get(scenario, {}), *path)
        ok = None
        if value is not None:
            ok = {">=": value >= target, "<=": value <= target, "==": value == target}[op]
        rows.append(
            {
                "scenario": scenario,
                "what": label,
                "value": value,
                "target": f"{op} {target}{unit}",
                "ok": ok,
            }
        )
    return rows


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return "—" if value is None else str(value)


def _s(stats: dict | None, unit: str = "") -> str:
    if not stats:
        return "—"
    return (
        f"{_fmt(stats['median'])}{unit} ({_fmt(stats['min'])}–{_fmt(stats['max'])}, n={stats['n']})"
    )


def markdown(record: dict) -> str:
    r, m = record["results"], record["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Run {record['date']}{' (smoke)' if record['smoke'] else ''} by `make bench`. "
        f"Machine: {m['cpu']}, {m['cores']} cores, GPU: {m['gpu']}; Python {m['python']}. "
        f"Model: {record['model']}. Medians with (min–max, n); ratios are measured in the "
        "same run, since absolute times on a shared machine drift.",
        "",
        "## Targets",
        "",
        "| scenario | what | measured | target | held |",
        "|---|---|---|---|---|",
    ]
    for v in record["verdicts"]:
        held = {True: "yes", False: "**no**", None: "not run"}[v["ok"]]
        lines.append(
            f"| {v['scenario']} | {v['what']} | {_fmt(v['value'])} | {v['target']} | {held} |"
        )
    lines += ["", "## Details", ""]
    if "engine" in r:
        e = r["engine"]
        lines += [
            "**1. Engine overhead** (128 tokens, temperature 0, seed 42, model loaded)",
            "",
            f"- direct llama-cpp-python: {_s(e['direct_tokens_per_s'], ' tok/s')}",
            f"- through the service (POST → completed): {_s(e['service_tokens_per_s'], ' tok/s')}",
            f"- 8 tokens end to end: direct {_s(e['short_direct_ms'], ' ms')}, "
            f"service {_s(e['short_service_ms'], ' ms')}",
            "",
        ]
    if "peer" in r:
        p = r["peer"]
        if "skipped" in p:
            lines += [f"**2. Peer server**: skipped — {p['skipped']}", ""]
        else:
            lines += [
                "**2. llama-cpp-python's server vs ours** (plain: `/v1/completions`; "
                "structured: `/v1/chat/completions`, 16-object JSON schema)",
                "",
            ]
            for key in ("peer_plain", "ours_plain", "peer_structured", "ours_structured"):
                valid = (
                    f", schema-valid answers {p[key]['valid_json']}/{p[key]['tokens_per_s']['n']}"
                    if "structured" in key
                    else ""
                )
                lines.append(
                    f"- {key}: {_s(p[key]['tokens_per_s'], ' tok/s')}, latency "
                    f"{_s(p[key]['latency_ms'], ' ms')}{valid}"
                )
            lines.append("")
    if "structured" in r:
        s = r["structured"]
        lines += ["**3. Structured output** (generation tokens/s from the task reports)", ""]
        lines += [
            f"- {k}: {_s(s[k], ' tok/s')}" for k in ("unconstrained", "native_gbnf", "llguidance")
        ]
        lines += [
            f"- llguidance {s['llguidance_ratio']:.2f}×, llama.cpp native "
            f"{s['native_ratio']:.2f}× of unconstrained",
            "",
        ]
    if "load" in r:
        ld = r["load"]
        lines += [
            "**4. Model load**",
            "",
            f"- `POST models/load`, cold: {_s(ld['api_cold_ms'], ' ms')} "
            f"(the worker's own load: {_s(ld['worker_load_ms'], ' ms')})",
            f"- direct `Llama(...)`: {_s(ld['direct_ms'], ' ms')}",
            f"- hot path: `{ld['already_loaded']}`, task `hot_path={ld['hot_path']}`, "
            f"load {ld['hot_path_load_ms']} ms",
            "",
        ]
    if "throughput" in r:
        t = r["throughput"]
        lines += ["**5. Pipeline** (zero-latency OpenAI-compatible stub on loopback)", ""]
        for n in (1, 2, 4):
            if f"{n}_workers" in t:
                w = t[f"{n}_workers"]
                lines.append(
                    f"- {n} remote worker(s): {w['tasks_per_s']:.0f} tasks/s "
                    f"({w['tasks']} tasks in {w['seconds']:.1f} s)"
                )
        if "post" in t:
            lines.append(
                f"- `POST /api/v1/tasks` at {t['post']['clients']} clients: "
                f"p50 {_fmt(t['post']['latency_ms']['median'])} ms, p99 "
                f"{_fmt(t['post']['latency_ms']['p99'])} ms; Redis "
                f"{t['post']['redis_bytes_per_queued_task']} bytes per queued task"
            )
        lines.append(f"- RSS (MB): {t.get('rss_mb')}")
        lines.append("")
    if "scale" in r:
        c = r["scale"]
        lines += [
            f"**6. Scale**: {c['tasks']} tasks queued at {c['enqueue_per_s']:.0f}/s, "
            f"{c['redis_bytes_per_task']} bytes each in Redis, ordering correct: "
            f"{c['ordering_correct']}",
            "",
        ]
        lines += [f"- {path}: {_s(stats, ' ms')}" for path, stats in c["endpoint_ms"].items()]
        lines.append("")
    lines += [
        "What was profiled and fixed, and where the floor is for the targets that do not "
        "hold: [PERFORMANCE.md](PERFORMANCE.md).",
        "",
    ]
    return "\n".join(lines) + "\n"
