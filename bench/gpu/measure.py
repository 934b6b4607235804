"""Engine-level throughput on one machine: llama.cpp's C++ ceiling (llama-batched-bench),
llama-server (CPU sampling, and --backend-sampling), the project's own BatchEngine (as the GPU
worker builds it), a reference loop with llama.cpp's backend (on-device) sampling, and the whole
service. Aggregate generated tokens/s at C concurrent sequences, T tokens each (EOS ignored but
by the service, whose API has no ignore_eos: it reports mean_tokens). Prints JSON lines; run.sh
calls it per stage and table.py makes the Markdown table. The stages live beside it
(cpp_stages, engine_stage, proto_stage, service_stage; rows: what they share).

    python measure.py MODEL --bin DIR --levels 1,8,32 --tokens 128 --ngl 99 --what cpp,ours

Against the kit it came from (../shared/gpu-kit/gpubench.py): no `proto_host` (a numpy loop of
its own, not the engine's host path: `ours` at temperature 0.8 is the engine's); greedy `ours`
runs without a repeat penalty, as the other rows; the service gets a presets.toml whose n_ctx
fits every slot and only OpenAI fields on /v1/completions.
"""

import argparse
import json
import os
import signal
import sys
import time

from cpp_stages import batched_bench, server_bench
from engine_stage import ours_bench
from proto_stage import proto_bench
from rows import ROWS, emit
from service_stage import service_bench

STAGES = {
    "cpp": lambda a: batched_bench(a, a.model),
    "server": lambda a: server_bench(a, a.model),
    "server_bs": lambda a: server_bench(a, a.model, ("--backend-sampling",), "llama_server_bs"),
    "ours": lambda a: ours_bench(a, a.model, flash=True),
    "ours_nofa": lambda a: ours_bench(a, a.model, flash=False),
    "proto": lambda a: proto_bench(a, a.model, flash=True),
    "service": lambda a: service_bench(a, a.model),
}


def arguments(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tag", default="model")
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    ap.add_argument("--levels", default="1,8,32")
    ap.add_argument("--temps", default="0,0.8")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--ngl", type=int, default=99)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--server-args", default="")
    ap.add_argument("--what", default="cpp,server,ours,proto")
    ap.add_argument("--proj", default="/tmp/proj")
    a = ap.parse_args(argv)
    a.levels = [int(x) for x in a.levels.split(",")]
    a.temps = [float(x) for x in a.temps.split(",")]
    return a


def main(argv=None) -> None:
    # `timeout` ends us with SIGTERM: exit through the finally blocks, which stop llama-server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    a = arguments(argv)
    for w in a.what.split(","):
        started = time.time()
        try:
            STAGES[w](a)
        except Exception as exc:  # keep going: one failure must not lose the rest
            emit({"what": w, "model": a.tag, "error": repr(exc)[:500]})
        print(f"# {w} {time.time() - started:.1f}s", flush=True)
    with open(f"{a.out}/rows-{a.tag}.jsonl", "a") as fh:
        for r in ROWS:
            fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    sys.exit(main())
