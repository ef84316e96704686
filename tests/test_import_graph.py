"""The import graph of service/ and schemas/: acyclic, counting imports inside functions, and
every dependency pointing down the layers docs/architecture.md draws.

Function-level imports count: they hide a cycle from Python's import machinery, not from a reader.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("service", "schemas")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph() -> dict[str, set[str]]:
    """module → the project modules it imports anywhere in its body (functions included)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, path.name == "__init__.py", node)
                named = [f"{base}.{alias.name}" for alias in node.names]
                # `from pkg import mod` imports the module (and runs pkg/__init__ first, which is pkg's own
                # business); `from mod import name` depends on mod itself.
                candidates = [c for c in named if c in modules] or [base]
            else:
                continue
            for candidate in candidates:
                # `from pkg import mod` names a module; `from mod import name` names mod itself.
                while candidate and candidate not in modules:
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != name:
                    targets.add(candidate)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


# Layers, top to bottom. A module may import its own layer and the layers below, never above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "entry points",
        (
            "service.__main__",
            "service.cli",
            "service.cli_progress",
            "service.cli_text",
            "service.wsgi",
            "service.gunicorn_conf",
            "service.gunicorn_worker",
        ),
    ),
    ("http", ("service.api",)),
    ("application", ("service.application", "service.jobs")),
    ("wire", ("schemas",)),
    # the jobs package's plain data (the plan, grid expansion, its settings, the largest stable learning rate over
    # a sweep's points) is domain; the rest is application
    (
        "domain",
        (
            "service.engine",
            "service.grading",
            "service.jobs.model",
            "service.jobs.sweep",
            "service.jobs.settings",
            "service.jobs.stable_lr",
        ),
    ),
    ("base", ("service.config", "service.logs", "service")),
]
# Where the layers above need a value from below them at import time in a torch-free process:
# config reads the limits (schemas.limits → engine.spec, both plain dataclasses).
# config reads the job settings (service.jobs.settings: a plain dataclass, stdlib only) likewise.
ALLOWED = {("service.config", "schemas.limits"), ("service.config", "service.jobs.settings")}


def layer_of(module: str) -> int:
    best, rank = -1, len(LAYERS)
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def test_dependencies_point_down():
    upward = [
        f"{a} ({LAYERS[layer_of(a)][0]}) → {b} ({LAYERS[layer_of(b)][0]})"
        for a, targets in import_graph().items()
        for b in targets
        if layer_of(b) < layer_of(a) and (a, b) not in ALLOWED
    ]
    assert upward == []


def test_engine_and_grading_domain_import_only_themselves():
    """The engine is torch + stdlib; the grading domain may read the engine's spec, nothing else."""
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("service.engine"):
            assert all(t.startswith("service.engine") for t in targets), (module, targets)
        if module.startswith("service.grading"):
            # the engine's spec and its prose (narrative: stdlib only), which the lecture explanations share
            allowed = ("service.grading", "service.engine.spec", "service.engine.narrative")
            assert all(t.startswith(allowed) for t in targets), (module, targets)


FLASK = ("flask", "flask_smorest", "flask_limiter", "werkzeug", "prometheus_client", "service.api")


def _loaded_after(code: str) -> list[str]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code + f"\nimport sys, json; print(json.dumps([m for m in {FLASK!r} if m in sys.modules]))",
        ],
        cwd=ROOT,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def test_the_application_layer_loads_no_flask():
    code = "import service.application.reports, service.application.grading, service.application.assignments"
    assert _loaded_after(code) == []


@pytest.mark.parametrize("spec", ["examples/specs/sigmoid_vanishing.json"])
def test_the_cli_loads_no_flask(spec):
    """`python -m service analyze` runs the analysis (and prints it) without the HTTP layer."""
    code = (
        "import contextlib, io\nfrom service.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): assert main(['analyze', {spec!r}]) == 0"
    )
    assert _loaded_after(code) == []
