"""The layering holds: no import cycles, and an upward import breaks `make lint`."""

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sop_llm", "grammars", "models_gpu", "tasks", "monitor")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_module_imports_itself_through_others():
    # grimp reads every import statement, those inside functions included.
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert _cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle(tmp_path, monkeypatch):
    for name, target in (("alpha", "beta"), ("beta", "alpha")):
        (tmp_path / "cyc").mkdir(exist_ok=True)
        (tmp_path / "cyc" / "__init__.py").touch()
        (tmp_path / "cyc" / f"{name}.py").write_text(f"def f():\n    from cyc import {target}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _cycles(grimp.build_graph("cyc", cache_dir=None)) == [["cyc.alpha", "cyc.beta"]]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_layer_contract_holds():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]


def _with_import(tmp_path, module: str, statement: str) -> subprocess.CompletedProcess:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    source = tmp_path / (module.replace(".", "/") + ".py")
    source.write_text(source.read_text() + f"\n\ndef _upward():\n    {statement}\n")
    return _lint_imports(tmp_path)


def test_one_upward_import_breaks_the_layer_contract(tmp_path):
    result = _with_import(tmp_path, "models_gpu.engine.llama", "from tasks import queue")
    assert result.returncode != 0
    assert "models_gpu.engine.llama -> tasks.queue" in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "edge"),
    [
        ("tasks.lifecycle", "from tasks.batches import finish", "tasks.lifecycle -> tasks.batches"),
        (
            "tasks.store",
            "from tasks.openai.serving import translate",
            "tasks.store -> tasks.openai",
        ),
        ("tasks.worker.processor", "from tasks.api import views", "tasks.worker.processor ->"),
    ],
)
def test_the_task_core_importing_a_door_or_the_batch_api_breaks_the_contract(
    tmp_path, module, statement, edge
):
    result = _with_import(tmp_path, module, statement)
    assert result.returncode != 0
    assert edge in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "edge"),
    [
        (
            "tasks.anthropic_api.translate",
            "from tasks.openai.serving import translate",
            "tasks.anthropic_api.translate -> tasks.openai.serving.translate",
        ),
        ("tasks.openai.routes", "from tasks.batches import views", "tasks.openai.routes ->"),
    ],
)
def test_a_door_importing_another_door_or_the_batch_api_breaks_the_contract(
    tmp_path, module, statement, edge
):
    result = _with_import(tmp_path, module, statement)
    assert result.returncode != 0
    assert edge in result.stdout


def test_every_base_module_sits_in_a_layer():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = " : ".join(config["contracts"][0]["layers"]).replace("|", ":")
    named = {name.strip() for name in layers.split(":")}
    modules = {f"sop_llm.{p.stem}" for p in (ROOT / "sop_llm").glob("*.py")} - {"sop_llm.__init__"}
    modules |= {
        f"sop_llm.{p.name}" for p in (ROOT / "sop_llm").iterdir() if (p / "__init__.py").exists()
    }
    assert modules - named == set()


ENGINE_CONTRACT = "The inference library knows neither Django nor the GPU ops app around it"


@pytest.mark.parametrize(
    ("module", "statement", "forbidden"),
    [
        ("models_gpu.engine.llama", "from django.conf import settings", "django"),
        ("models_gpu.engine.structured", "from sop_llm import settings", "sop_llm.settings"),
        ("models_gpu.engine.batching.engine", "from models_gpu import guard", "models_gpu.guard"),
        (
            "models_gpu.engine.choices",
            "from models_gpu.config import engine_config",
            "models_gpu.config",
        ),
    ],
)
def test_the_inference_library_importing_django_or_the_gpu_ops_app_breaks_its_contract(
    tmp_path, module, statement, forbidden
):
    result = _with_import(tmp_path, module, statement)
    assert result.returncode != 0
    assert f"{ENGINE_CONTRACT} BROKEN" in result.stdout
    assert f"models_gpu.engine is not allowed to import {forbidden}:" in result.stdout
    assert f"{module} -> {forbidden}" in result.stdout


def test_every_models_gpu_module_outside_the_library_is_forbidden_to_it():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["name"] == ENGINE_CONTRACT]
    package = ROOT / "models_gpu"
    modules = {f"models_gpu.{p.stem}" for p in package.glob("*.py")} - {"models_gpu.__init__"}
    modules |= {f"models_gpu.{p.name}" for p in package.iterdir() if (p / "__init__.py").exists()}
    assert modules - {"models_gpu.engine"} - set(contract["forbidden_modules"]) == set()
