"""No Docker engine here: the compose file and Dockerfiles are checked by reading them."""

import re
import runpy

import pytest
import yaml

from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SETTINGS = runpy.run_path(str(ROOT / "sop_llm" / "settings.py"))
SPEC_ENV = {
    "REDIS_URL",
    "SOP_LLM_API_KEYS",
    "WEBHOOK_SECRET",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_COMPATIBLE_BASE_URL",
    "OPENROUTER_API_KEY",
    "TOGETHER_API_KEY",
    "SESSION_TTL_HOURS",
    "IDEMPOTENCY_TTL_HOURS",
    "WEBHOOK_TIMEOUT_SECONDS",
    "WEBHOOK_MAX_RETRIES",
    "MODELS_DIR",
}
ENV_TO_SETTING = {"SOP_LLM_API_KEYS": "API_KEYS", "DJANGO_SECRET_KEY": "SECRET_KEY"}


def test_it_has_the_services_the_deployment_needs():
    assert set(SERVICES) == {"redis", "web", "worker-gpu", "worker-remote", "worker-webhooks"}


def test_redis_keeps_its_data_with_aof_on_a_volume():
    command = SERVICES["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "noeviction" in command  # tasks must never be evicted to make room
    assert any(v.endswith(":/data") for v in SERVICES["redis"]["volumes"])


@pytest.mark.parametrize(
    "name,command",
    [
        (
            "web",
            [
                "daphne",
                "-b",
                "0.0.0.0",
                "-p",
                "8000",
                "--proxy-headers",
                "sop_llm.asgi:application",
            ],
        ),
        (
            "worker-gpu",
            [
                "python",
                "manage.py",
                "rqworker",
                "--worker-class",
                "tasks.worker.workers.GpuWorker",
                "gpu",
            ],
        ),
        (
            "worker-remote",
            [
                "python",
                "manage.py",
                "rqworker",
                "--worker-class",
                "tasks.worker.workers.HeartbeatWorker",
                "remote",
            ],
        ),
        (
            "worker-webhooks",
            [
                "python",
                "manage.py",
                "rqworker",
                "--worker-class",
                "tasks.worker.workers.HeartbeatWorker",
                "webhooks",
            ],
        ),
    ],
)
def test_each_process_runs_the_documented_command(name, command):
    assert SERVICES[name]["command"] == command
    worker_class = next((c for c in command if c.startswith("tasks.worker.workers.")), None)
    if worker_class:
        import importlib

        module, _, cls = worker_class.rpartition(".")
        assert hasattr(importlib.import_module(module), cls)


def test_every_service_has_a_health_check():
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), name


def test_the_gpu_worker_reserves_an_nvidia_gpu_and_is_alone():
    deploy = SERVICES["worker-gpu"]["deploy"]
    assert deploy["replicas"] == 1
    [device] = deploy["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert any(v.endswith(":/models:ro") for v in SERVICES["worker-gpu"]["volumes"])


def test_the_environment_is_the_spec_s_and_every_variable_is_a_real_setting():
    for name in ("web", "worker-gpu", "worker-remote", "worker-webhooks"):
        env = SERVICES[name]["environment"]
        assert set(env) >= SPEC_ENV, (name, SPEC_ENV - set(env))
        for variable in env:
            assert ENV_TO_SETTING.get(variable, variable) in SETTINGS, variable
    assert "GPU_INDEX" in SERVICES["worker-gpu"]["environment"]
    assert "MAX_VRAM_USAGE_PERCENT" in SERVICES["worker-gpu"]["environment"]


def test_secrets_must_be_given_not_defaulted():
    raw = (ROOT / "docker-compose.yml").read_text()
    for secret in ("SOP_LLM_API_KEYS", "DJANGO_SECRET_KEY", "WEBHOOK_SECRET"):
        assert re.search(rf"\${{{secret}:\?", raw), secret


@pytest.mark.parametrize("dockerfile", [".docker/Dockerfile", ".docker/Dockerfile.gpu"])
def test_the_dockerfiles_copy_every_package_and_build_llama_cpp(dockerfile):
    text = (ROOT / dockerfile).read_text()
    for package in ("sop_llm", "tasks", "models_gpu", "monitor", "grammars"):
        assert f"COPY {package} {package}" in text
    assert "CMAKE_ARGS" in text and "FROM " in text
    if dockerfile.endswith(".gpu"):
        assert "-DGGML_CUDA=on" in text and "nvidia/cuda" in text


def test_the_compose_builds_point_at_existing_dockerfiles():
    for service in SERVICES.values():
        if "build" in service:
            assert (ROOT / service["build"]["dockerfile"]).is_file()
