from django.core.management.base import CommandError

from models_gpu.services import model_list, model_load, model_status, model_unload
from sop_llm.management.base import OpsCommand, subcommand, table


class Command(OpsCommand):
    help = "The model catalog, and load/unload on the GPU worker."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        subcommand(sub, "list", help="GGUF files under MODELS_DIR with their metadata")
        subcommand(sub, "loaded", help="what the GPU worker holds")
        load = subcommand(sub, "load", help="load a model on the GPU worker")
        load.add_argument("name")
        load.add_argument("--n-ctx", type=int)
        load.add_argument("--n-gpu-layers", type=int)
        load.add_argument("--wait", type=float, default=60)
        unload = subcommand(sub, "unload", help="free the GPU")
        unload.add_argument("--wait", type=float, default=60)

    def handle(self, *args, action, **options):
        if action == "list":
            rows = [
                {
                    **m,
                    "size_mb": round(m["file_size"] / 2**20),
                    "status": "ok" if m["valid"] else f"invalid: {m['error']}",
                }
                for m in model_list()
            ]
            self.emit(
                rows,
                lambda r: table(
                    r,
                    [
                        "name",
                        "alias",
                        "architecture",
                        "quantization",
                        "context_length",
                        "size_mb",
                        "status",
                    ],
                ),
            )
        elif action == "loaded":
            self.emit(model_status(), _loaded)
        elif action == "load":
            overrides = {
                k: v
                for k, v in (("n_ctx", options["n_ctx"]), ("n_gpu_layers", options["n_gpu_layers"]))
                if v
            }
            result = model_load(
                name=options["name"], overrides=overrides, wait_seconds=options["wait"]
            )
            self.emit(result, _outcome)
            if result.get("outcome") == "refused" or result["state"] == "failed":
                raise CommandError(result.get("message") or result.get("error"))
        else:
            self.emit(model_unload(wait_seconds=options["wait"]), _outcome)


def _loaded(status: dict) -> list[str]:
    model = status["loaded"]
    if not model:
        return ["no model loaded"]
    return [
        f"{model['name']}  {model['path']}",
        f"  params     {model['params']}",
        f"  load_ms    {model['load_ms']}",
        f"  worker     {model['owner']}",
    ]


def _outcome(result: dict) -> list[str]:
    if result["state"] == "pending":
        return [f"still running on the GPU worker (job {result['job_id']})"]
    if result["state"] == "failed":
        return [f"failed: {result['error']}"]
    lines = [result["outcome"].replace("_", " ")]
    if result.get("message"):
        lines.append(result["message"])
    if result.get("load_ms"):
        lines.append(f"load_ms {result['load_ms']}")
    if result.get("freed"):
        freed = result["freed"]
        lines.append(f"RSS {freed['rss_before_mb']} MB -> {freed['rss_after_mb']} MB")
    return lines
