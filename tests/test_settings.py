"""Settings come from the environment; a bad value stops start-up with one clear line."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SETTINGS_FILE = str(ROOT / "sop_llm" / "settings.py")
SPEC_VARIABLES = [
    "REDIS_URL",
    "GPU_INDEX",
    "MAX_VRAM_USAGE_PERCENT",
    "VRAM_RESERVE_MB",
    "MODELS_DIR",
    "SESSION_TTL_HOURS",
    "IDEMPOTENCY_TTL_HOURS",
    "WEBHOOK_TIMEOUT_SECONDS",
    "WEBHOOK_MAX_RETRIES",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_COMPATIBLE_BASE_URL",
    "OPENROUTER_API_KEY",
    "TOGETHER_API_KEY",
    "WEBHOOK_SECRET",
    "WEBHOOK_ALLOW_PRIVATE",
    "PORT",
]


def load(monkeypatch, **env):
    """Execute the settings module afresh under exactly this environment."""
    for name in SPEC_VARIABLES + ["SOP_LLM_API_KEYS", "REDIS_KEY_PREFIX"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(SETTINGS_FILE)


DEFAULTS = {
    "GPU_INDEX": 0,
    "MAX_VRAM_USAGE_PERCENT": 95,
    "VRAM_RESERVE_MB": 1024,
    "SESSION_TTL_HOURS": 24,
    "IDEMPOTENCY_TTL_HOURS": 24,
    "WEBHOOK_TIMEOUT_SECONDS": 30,
    "WEBHOOK_MAX_RETRIES": 3,
    "OPENAI_API_KEY": None,
    "ANTHROPIC_API_KEY": None,
    "OPENAI_COMPATIBLE_BASE_URL": None,
    "OPENROUTER_API_KEY": None,
    "TOGETHER_API_KEY": None,
    "WEBHOOK_SECRET": None,
    "WEBHOOK_ALLOW_PRIVATE": False,
    "PORT": 8000,
    "BATCH_MAX_LINES": 50_000,
    "BATCH_MAX_FILE_BYTES": 100 * 1024 * 1024,
    "BATCH_PRIORITY": -10,
    "BATCH_WINDOW_SECONDS": 86400,
}


@pytest.mark.parametrize("name,default", DEFAULTS.items())
def test_each_variable_has_its_documented_default(monkeypatch, name, default):
    assert load(monkeypatch, SOP_LLM_API_KEYS="k")[name] == default


def test_unset_redis_url_means_the_embedded_server(monkeypatch):
    values = load(monkeypatch, SOP_LLM_API_KEYS="k", EMBEDDED_REDIS_PORT="6391")
    assert values["REDIS_EMBEDDED"] is True
    assert values["REDIS_URL"] == "redis://127.0.0.1:6391/0"


def test_models_dir_defaults_to_the_repository_models_folder(monkeypatch):
    assert load(monkeypatch, SOP_LLM_API_KEYS="k")["MODELS_DIR"] == ROOT / "models"


OVERRIDES = {
    "REDIS_URL": ("redis://10.1.2.3:6400/2", "redis://10.1.2.3:6400/2"),
    "GPU_INDEX": ("1", 1),
    "MAX_VRAM_USAGE_PERCENT": ("80", 80),
    "VRAM_RESERVE_MB": ("2048", 2048),
    "SESSION_TTL_HOURS": ("48", 48),
    "IDEMPOTENCY_TTL_HOURS": ("2", 2),
    "WEBHOOK_TIMEOUT_SECONDS": ("5", 5),
    "WEBHOOK_MAX_RETRIES": ("0", 0),
    "OPENAI_API_KEY": ("sk-x", "sk-x"),
    "ANTHROPIC_API_KEY": ("sk-ant-x", "sk-ant-x"),
    "OPENAI_COMPATIBLE_BASE_URL": ("http://gpu-box:8000/v1", "http://gpu-box:8000/v1"),
    "OPENROUTER_API_KEY": ("or-x", "or-x"),
    "TOGETHER_API_KEY": ("tg-x", "tg-x"),
    "WEBHOOK_ALLOW_PRIVATE": ("yes", True),
    "PORT": ("9001", 9001),
}


@pytest.mark.parametrize("name,pair", OVERRIDES.items())
def test_each_variable_can_be_overridden(monkeypatch, name, pair):
    raw, expected = pair
    assert load(monkeypatch, SOP_LLM_API_KEYS="k", **{name: raw})[name] == expected


def test_api_keys_are_a_comma_separated_list(monkeypatch):
    assert load(monkeypatch, SOP_LLM_API_KEYS=" a1 , b2 ,")["API_KEYS"] == ["a1", "b2"]


def test_without_keys_a_development_key_is_generated_never_open(monkeypatch, capsys):
    values = load(monkeypatch)
    assert len(values["API_KEYS"]) == 1 and values["API_KEYS"][0].startswith("sk-sop-dev-")
    assert values["API_KEYS"][0] not in capsys.readouterr().err  # commands need no key


def test_the_web_process_prints_the_key_it_generated():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "SOP_LLM_API_KEYS"}
    env["DJANGO_SETTINGS_MODULE"] = "sop_llm.settings"
    done = subprocess.run(
        [sys.executable, "-c", "import sop_llm.asgi"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "accepts the generated key sk-sop-dev-" in done.stderr


BAD = {
    "MAX_VRAM_USAGE_PERCENT": (
        "150",
        "MAX_VRAM_USAGE_PERCENT='150' is out of range (allowed: 1..100)",
    ),
    "SESSION_TTL_HOURS": ("abc", "SESSION_TTL_HOURS='abc' is not an integer"),
    "PORT": ("70000", "PORT='70000' is out of range"),
    "GPU_INDEX": ("-1", "GPU_INDEX='-1' is out of range"),
    "WEBHOOK_ALLOW_PRIVATE": ("maybe", "WEBHOOK_ALLOW_PRIVATE='maybe' is not a boolean"),
    "REDIS_URL": ("localhost:6379", "REDIS_URL='localhost:6379' is not a URL"),
    "WEBHOOK_SECRET": ("hunter2", "WEBHOOK_SECRET must look like whsec_"),
    "WEBHOOK_MAX_RETRIES": ("-3", "WEBHOOK_MAX_RETRIES='-3' is out of range"),
}


@pytest.mark.parametrize("name,pair", BAD.items())
def test_a_bad_value_stops_start_up_with_one_line_naming_it(name, pair):
    raw, message = pair
    env = {**os.environ, name: raw}
    run = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("configuration error: ") and message in lines[0]
