"""The Dockerfile and docker-compose.yml, checked as far as a machine without Docker can."""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import PurePosixPath

import yaml

from runtime.config import settings as settings_module
from tests.clitools import ROOT


@dataclass
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        found.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return found


DOCKERFILE = parse_dockerfile((ROOT / "Dockerfile").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def instructions(keyword: str) -> list[Instruction]:
    return [i for i in DOCKERFILE if i.keyword == keyword]


def copies() -> list[tuple[list[str], str, int]]:
    """(sources, destination, position) of every COPY from the build context."""
    out = []
    for position, instruction in enumerate(DOCKERFILE):
        if instruction.keyword != "COPY":
            continue
        words = [w for w in shlex.split(instruction.args) if not w.startswith("--chown")]
        assert not any(w.startswith("--from") for w in words), "no multi-stage copies expected"
        *sources, destination = words
        out.append((sources, destination, position))
    return out


def test_every_copied_path_exists() -> None:
    for sources, _, _ in copies():
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"


def test_dockerignore_keeps_copied_paths() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".venv", ".rosey", ".env", ".git"} <= set(ignored)
    for sources, _, _ in copies():
        for source in sources:
            top = PurePosixPath(source).parts[0]
            assert top not in ignored, f"COPY {source}, but .dockerignore leaves {top} out"


def test_slim_base_and_non_root_user() -> None:
    [base] = instructions("FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base.args), base.args
    users = instructions("USER")
    assert users and users[-1].args not in ("root", "0"), "the image must not run as root"
    assert DOCKERFILE.index(users[-1]) > max(p for _, _, p in copies())


def test_pip_install_gets_everything_pyproject_builds_from() -> None:
    """A new package, readme or build hook in pyproject.toml must be copied before the install."""
    [install] = [i for i in instructions("RUN") if "pip install ." in i.args]
    position = DOCKERFILE.index(install)
    before = {
        PurePosixPath(s).parts[0] for sources, _, p in copies() if p < position for s in sources
    }
    tool = PYPROJECT["tool"]["setuptools"]
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"]}
    for pattern in tool["packages"]["find"]["include"]:
        package = pattern.rstrip("*").rstrip(".")
        if (ROOT / package / "__init__.py").exists():
            needed.add(package)
    for target in tool.get("cmdclass", {}).values():
        needed.add(target.split(".")[0] + ".py")
    assert needed <= before, f"copied after (or never): {sorted(needed - before)}"


def test_functions_and_manifests_are_mountable() -> None:
    config = settings_module.load(ROOT / "docker" / "rosey.yaml", environ={})
    destinations = {PurePosixPath(d) for _, d, _ in copies()}
    [workdir] = instructions("WORKDIR")
    app = PurePosixPath(workdir.args)
    inside = {
        app / d if not PurePosixPath(d).is_absolute() else PurePosixPath(d) for d in destinations
    }
    assert PurePosixPath(str(config.functions_dir)) in inside
    assert PurePosixPath(str(config.manifests_dir)) in inside
    mounts = COMPOSE["services"]["rosey"]["volumes"]
    assert f"./functions:{config.functions_dir}:ro" in mounts
    assert f"./manifests:{config.manifests_dir}:ro" in mounts
    [copied] = [d for s, d, _ in copies() if s == ["docker/rosey.yaml"]]
    [cmd] = instructions("CMD")
    assert str(app / copied) in cmd.args


def test_healthcheck_asks_healthz_on_the_configured_port() -> None:
    config = settings_module.load(ROOT / "docker" / "rosey.yaml", environ={})
    port = config.http.listen.rsplit(":", 1)[1]
    [check] = instructions("HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/healthz" in check.args
    assert "CMD" in check.args and "python" in check.args  # the slim image has no curl or wget
    assert [e.args for e in instructions("EXPOSE")] == [port]
    assert config.http.listen.startswith("0.0.0.0:")  # reachable through the published port


def test_compose_stack() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"nats", "redis", "rosey"}
    nats, redis, rosey = services["nats"], services["redis"], services["rosey"]

    conf = (ROOT / "docker" / "nats.conf").read_text()
    assert re.search(r"^jetstream:\s*enabled", conf, re.MULTILINE)
    assert "-sd" in nats["command"]  # JetStream's store on the nats-data volume
    assert " ".join(redis["command"]).count("--appendonly yes") == 1

    assert rosey["build"] == "." and (ROOT / "Dockerfile").exists()
    assert set(rosey["depends_on"]) == {"nats", "redis"}
    env = rosey["environment"]
    assert env["ROSEY_NATS_URL"] == "nats://nats:4222"
    assert env["ROSEY_REDIS_URL"].startswith("redis://redis:6379")
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{source} is mounted but does not exist"
            else:
                assert source in COMPOSE["volumes"], f"{source}: no such named volume"
        for published in service.get("ports", []):
            assert published.startswith("127.0.0.1:"), f"{published} is open to the network"


def test_every_secret_comes_from_env_example() -> None:
    example = {
        line.split("=", 1)[0]
        for line in (ROOT / "docker" / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    used = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    assert used == example
    # The NATS server reads its passwords from its own environment, set from .env.
    conf_vars = set(re.findall(r":\s*\$(\w+)", (ROOT / "docker" / "nats.conf").read_text()))
    assert conf_vars and conf_vars <= set(COMPOSE["services"]["nats"]["environment"])
    assert conf_vars <= example
