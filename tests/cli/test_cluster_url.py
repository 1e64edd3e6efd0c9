"""`nats.url` naming several servers (a cluster): `rosey run` connects to one that answers."""

from pathlib import Path

from runtime.host.servers import free_port
from tests.clitools import rosey


def test_run_with_a_list_of_servers_skips_a_dead_one(
    project: Path, nats_url: str, redis_url: str
) -> None:
    dead = f"nats://127.0.0.1:{free_port()}"
    (project / "rosey.yaml").write_text(
        f"nats:\n  url: [{dead}, {nats_url}]\nredis:\n  url: {redis_url}\n"
    )
    result = rosey(project, "run", stdin="!roll 2d6\n")
    assert result.returncode == 0, result.stderr
    assert "rosey: console rolled 2d6: [" in result.stdout, result.stdout
    assert "invalid connect url" not in result.stderr


def test_run_names_a_bad_server_in_the_list(project: Path) -> None:
    (project / "rosey.yaml").write_text("nats:\n  url: nats://a:4222,http://b:80\n")
    result = rosey(project, "run", stdin="")
    assert result.returncode != 0
    assert "rosey.yaml: nats.url: 'http://b:80' is not a NATS URL" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
