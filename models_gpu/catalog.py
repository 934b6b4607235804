"""The model catalog: GGUF files under MODELS_DIR, their header metadata, optional presets.

Names come only from this listing (file stem, or a preset's alias); a request never builds a
path, so `../x` or an absolute path simply is not a catalog name. Symlinks that lead outside
MODELS_DIR are listed as invalid and never loaded.
"""

import os
import threading
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings

from models_gpu.engine.gguf_header import NotGGUF, read_metadata

PRESETS_FILE = "presets.toml"
# llama.cpp's LLAMA_FTYPE numbers -> the quantization names people use
FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4",
}
DEFAULT_N_CTX = 4096
KV_BYTES_PER_VALUE = 2  # f16 KV cache
COMPUTE_OVERHEAD_BYTES = 64 * 1024 * 1024


@dataclass
class ModelInfo:
    name: str
    path: str
    file_size: int
    valid: bool
    error: str | None = None
    architecture: str | None = None
    display_name: str | None = None
    size_label: str | None = None
    quantization: str | None = None
    context_length: int | None = None
    n_layers: int | None = None
    kv_width: int | None = None  # per layer, keys + values, per token
    n_vocab: int | None = None  # tokens in its vocabulary (logit_bias ids are checked against it)
    has_chat_template: bool = False
    alias: str | None = None
    defaults: dict = field(default_factory=dict)  # preset load parameters

    def estimate_bytes(self, n_ctx: int) -> int:
        """Weights + f16 KV cache for n_ctx + a fixed compute-buffer allowance."""
        kv = n_ctx * (self.n_layers or 0) * (self.kv_width or 0) * KV_BYTES_PER_VALUE
        return self.file_size + kv + COMPUTE_OVERHEAD_BYTES

    def to_dict(self, n_ctx: int | None = None) -> dict:
        data = asdict(self)
        data.pop("kv_width")
        data.pop("n_vocab")
        n_ctx = n_ctx or self.defaults.get("n_ctx") or DEFAULT_N_CTX
        data["estimated_memory"] = (
            {"n_ctx": n_ctx, "bytes": self.estimate_bytes(n_ctx)} if self.valid else None
        )
        return data


def _info(path: Path, root: Path) -> ModelInfo:
    size = path.stat().st_size if path.exists() else 0
    info = ModelInfo(name=path.stem, path=str(path), file_size=size, valid=False)
    if not path.resolve().is_relative_to(root):
        info.error = "symlink leads outside MODELS_DIR; refused"
        return info
    try:
        meta = read_metadata(str(path))
    except (NotGGUF, OSError) as exc:
        info.error = str(exc)
        return info
    arch = meta.get("general.architecture")
    heads_kv = meta.get(f"{arch}.attention.head_count_kv") or meta.get(
        f"{arch}.attention.head_count"
    )
    embd, heads = meta.get(f"{arch}.embedding_length"), meta.get(f"{arch}.attention.head_count")
    head_dim = meta.get(f"{arch}.attention.key_length") or (embd // heads if embd and heads else 0)
    value_dim = meta.get(f"{arch}.attention.value_length") or head_dim
    info.valid = True
    info.architecture = arch
    info.display_name = meta.get("general.name")
    info.size_label = meta.get("general.size_label")
    info.quantization = FILE_TYPES.get(meta.get("general.file_type"), meta.get("general.file_type"))
    info.context_length = meta.get(f"{arch}.context_length")
    info.n_layers = meta.get(f"{arch}.block_count")
    info.kv_width = (heads_kv or 0) * (head_dim + value_dim)
    info.has_chat_template = "tokenizer.chat_template" in meta
    tokens = meta.get("tokenizer.ggml.tokens")
    info.n_vocab = tokens.get("length") if isinstance(tokens, dict) else None
    return info


class Catalog:
    """Scans MODELS_DIR; re-reads a file's header only when its size or mtime changes.

    A request resolves its model by name (twice on the web, again in the GPU worker), and a
    full scan (glob, presets.toml parsed, a header per new file) cost ~0.1 ms each time: the
    listing is kept while the stat of everything it read is unchanged, so an added, removed,
    replaced or edited file (or preset) is seen on the very next call."""

    def __init__(self) -> None:
        self._cache: dict[tuple, ModelInfo] = {}
        self._listing: tuple[tuple, list[ModelInfo]] | None = None
        self._lock = threading.Lock()

    def _scan(self, root: Path) -> list[ModelInfo]:
        presets = _presets(root)
        models = []
        for path in sorted(root.glob("*.gguf")) if root.is_dir() else []:
            stat = path.stat() if path.exists() else None
            stamp = (str(path), stat.st_size if stat else 0, stat.st_mtime_ns if stat else 0)
            with self._lock:
                if stamp not in self._cache:
                    self._cache[stamp] = _info(path, root.resolve())
                info = self._cache[stamp]
            preset = presets.get(info.name, {})
            info.alias, info.defaults = (
                preset.get("alias"),
                {k: v for k, v in preset.items() if k != "alias"},
            )
            models.append(info)
        return models

    def list(self) -> list[ModelInfo]:
        root = Path(settings.MODELS_DIR)
        stamp = _stamp(root)  # before the scan: a change during it shows on the next call
        listing = self._listing
        if listing is not None and listing[0] == stamp:
            return list(listing[1])
        models = self._scan(root)
        self._listing = (stamp, models)
        return list(models)

    def resolve(self, name: str) -> ModelInfo:
        models = self.list()
        for info in models:
            if name in (info.name, info.alias):
                if not info.valid:
                    raise LookupError(f"model {name!r} is in MODELS_DIR but invalid: {info.error}")
                return info
        known = ", ".join(sorted(m.name for m in models if m.valid)) or "none"
        raise LookupError(f"no model {name!r} in the catalog (MODELS_DIR); available: {known}")


def _stamp(root: Path) -> tuple:
    """Everything a listing depends on, from stat calls alone: the folder, and the size,
    mtime and inode of each GGUF (through symlinks) and of presets.toml."""
    try:
        folder = os.stat(root)
        entries = [e for e in os.scandir(root) if e.name.endswith(".gguf")]
    except OSError:
        return (str(root), None)
    files = [(e.name, _file_stamp(e.path)) for e in entries]
    presets = _file_stamp(os.path.join(root, PRESETS_FILE))
    return (str(root), folder.st_mtime_ns, presets, tuple(sorted(files)))


def _file_stamp(path: str) -> tuple | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)


def _presets(root: Path) -> dict[str, dict]:
    file = root / PRESETS_FILE
    if not file.is_file():
        return {}
    try:
        return tomllib.loads(file.read_text()).get("models", {})
    except tomllib.TOMLDecodeError:
        return {}


_catalog = Catalog()


def catalog_list() -> list[ModelInfo]:
    return _catalog.list()


def catalog_resolve(name: str) -> ModelInfo:
    return _catalog.resolve(name)
