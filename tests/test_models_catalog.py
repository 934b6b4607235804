"""The catalog reads GGUF headers without loading weights; names never become paths."""

import os
import shutil
import time

import pytest

from models_gpu.catalog import catalog_list, catalog_resolve
from models_gpu.vram import NvmlReader, gpu_status
from tests.conftest import ROOT

GEMMA = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"


@pytest.fixture
def models_dir(settings):
    """A MODELS_DIR of its own holding the real model (a hard link: no 250 MB copy)."""
    path = ROOT / "var" / "test-models" / settings.REDIS_KEY_PREFIX.replace(":", "-")
    path.mkdir(parents=True)
    os.link(GEMMA, path / GEMMA.name)
    settings.MODELS_DIR = path
    yield path
    shutil.rmtree(path)


def test_it_lists_the_real_model_with_its_header_metadata(models_dir):
    started = time.perf_counter()
    [info] = catalog_list()
    assert time.perf_counter() - started < 1.0  # the header only, never the weights
    assert info.valid and info.name == "gemma-3-270m-q4_k_m"
    assert (info.architecture, info.size_label, info.quantization) == ("gemma3", "270M", "Q4_K_M")
    assert info.context_length == 32768 and info.n_layers == 18
    assert info.file_size == GEMMA.stat().st_size
    data = info.to_dict(n_ctx=4096)
    # weights + f16 KV (4096 ctx x 18 layers x 512 values x 2 bytes) + compute allowance
    assert data["estimated_memory"]["bytes"] == info.file_size + 4096 * 18 * 512 * 2 + 64 * 2**20


def test_a_corrupt_or_foreign_file_is_listed_as_invalid_not_a_crash(models_dir):
    (models_dir / "notes.gguf").write_text("this is not a model")
    (models_dir / "truncated.gguf").write_bytes(GEMMA.read_bytes()[:1000])
    by_name = {m.name: m for m in catalog_list()}
    assert not by_name["notes"].valid and "not a GGUF file" in by_name["notes"].error
    assert not by_name["truncated"].valid and "ends inside" in by_name["truncated"].error
    with pytest.raises(LookupError, match="invalid"):
        catalog_resolve("notes")


def test_a_symlink_out_of_models_dir_is_refused(models_dir):
    os.symlink(GEMMA, models_dir / "escape.gguf")  # GEMMA lives outside this MODELS_DIR
    escape = {m.name: m for m in catalog_list()}["escape"]
    assert not escape.valid and "outside MODELS_DIR" in escape.error


@pytest.mark.parametrize(
    "name", ["../gemma-3-270m-q4_k_m", "/etc/passwd", str(GEMMA), "gemma-3-270m-q4_k_m.gguf", ""]
)
def test_names_that_are_not_catalog_entries_are_refused(models_dir, name):
    with pytest.raises(LookupError, match="no model"):
        catalog_resolve(name)


def test_a_preset_gives_an_alias_and_load_defaults(models_dir):
    (models_dir / "presets.toml").write_text(
        '[models."gemma-3-270m-q4_k_m"]\nalias = "g"\nn_ctx = 2048\nchat_format = "gemma"\n'
    )
    info = catalog_resolve("g")
    assert info.name == "gemma-3-270m-q4_k_m" and info.defaults == {
        "n_ctx": 2048,
        "chat_format": "gemma",
    }


def test_the_kept_listing_shows_each_change_to_models_dir_on_the_next_call(models_dir):
    presets = models_dir / "presets.toml"
    assert catalog_resolve("gemma-3-270m-q4_k_m").alias is None
    presets.write_text('[models."gemma-3-270m-q4_k_m"]\nalias = "g"\n')
    assert catalog_resolve("g").name == "gemma-3-270m-q4_k_m"  # a preset written
    presets.write_text('[models."gemma-3-270m-q4_k_m"]\nalias = "h"\n')
    assert catalog_resolve("h").name == "gemma-3-270m-q4_k_m"  # the same file edited
    with pytest.raises(LookupError):
        catalog_resolve("g")
    os.link(GEMMA, models_dir / "second.gguf")
    assert catalog_resolve("second").valid  # a model added
    (models_dir / "second.gguf").unlink()
    (models_dir / "second.gguf").write_text("replaced by something else")
    assert not {m.name: m for m in catalog_list()}["second"].valid  # replaced in place
    (models_dir / "second.gguf").unlink()
    assert [m.name for m in catalog_list()] == ["gemma-3-270m-q4_k_m"]  # removed


def test_the_models_endpoint_lists_the_catalog(api, models_dir):
    models = api.get("/api/v1/models").json()["models"]
    assert [m["name"] for m in models] == ["gemma-3-270m-q4_k_m"]
    assert models[0]["estimated_memory"]["bytes"] > models[0]["file_size"]


def test_without_a_driver_nvml_reports_no_gpu_for_real():
    status = NvmlReader().read(0)
    assert status.available is False and "no GPU" in status.reason


def test_gpu_status_is_cached_for_five_seconds(settings, monkeypatch):
    settings.GPU_READER = "tests.fakes.gpu.FakeGpuReader"
    monkeypatch.setenv("FAKE_GPU", '{"memory_used_mb": 111}')
    assert gpu_status().memory_used_mb == 111
    monkeypatch.setenv("FAKE_GPU", '{"memory_used_mb": 222}')
    assert gpu_status().memory_used_mb == 111
    assert gpu_status(fresh=True).memory_used_mb == 222


def test_models_status_says_no_gpu_on_this_machine(api):
    status = api.get("/api/v1/models/status").json()
    assert status["gpu"]["available"] is False and status["loaded"] is None
