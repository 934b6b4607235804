"""What the library is told: how a model is loaded (`LoadParams`, per load) and how the process
runs models (`EngineConfig`, built from the settings by the app layer: `models_gpu.config`)."""

import os
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LoadParams:
    n_ctx: int = 4096
    n_gpu_layers: int = -1
    n_batch: int = 512
    type_k: str = "f16"
    type_v: str = "f16"
    flash_attn: bool | str = "auto"  # true, false, or "auto": llama.cpp decides per device
    chat_format: str | None = None

    def covers(self, wanted: "LoadParams") -> bool:
        """A loaded model serves a request when everything matches and its context is enough."""
        same = asdict(self) | {"n_ctx": 0} == asdict(wanted) | {"n_ctx": 0}
        return same and self.n_ctx >= wanted.n_ctx

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EngineConfig:
    slots: int = 1  # sequences decoded together; above 1 a batch engine runs beside the Llama
    threads: int = 0  # llama.cpp threads; 0 = every core
    local_engine: str = "llama"  # "synthetic": a fixed-time decode step (benchmarks, tests)
    synthetic_step_ms: float = 10.0
    grammar_engine: str = "llguidance"  # for a task whose options name none

    @property
    def n_threads(self) -> int:
        # llama-cpp-python defaults to half the cores; generation here is faster on all of them.
        return self.threads or os.cpu_count() or 1

    def single_n_ctx(self, params: LoadParams) -> int:
        """The Llama's own context, for what runs alone (native GBNF): with a batch beside it,
        one slot's share, so the two contexts together hold n_ctx x (1 + 1/slots) of KV cache."""
        return params.n_ctx if self.slots == 1 else max(256, params.n_ctx // self.slots)
