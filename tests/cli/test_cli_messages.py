"""What `rosey` says when the configuration is wrong or the folder holds nothing to serve."""

import json
import subprocess
from pathlib import Path

from tests.clitools import ROSEY, clean_env, rosey, start_until
from tests.opskit import fetch_json


def test_a_missing_config_is_named_as_given(project: Path) -> None:
    result = rosey(project, "run", "--config", "/nope/rosey.yaml")
    assert result.returncode == 1
    assert "Error: /nope/rosey.yaml: file not found" in result.stderr
    assert "../" not in result.stderr


def test_a_missing_plugin_stops_rosey_before_any_server_starts(project: Path) -> None:
    (project / "r2.yaml").write_text("log_level: WARNING\nplugins: {enabled: [nope]}\n")
    result = rosey(project, "run", "--config", "r2.yaml", stdin="!flip\n")
    assert result.returncode == 1
    assert (
        "Error: r2.yaml: plugins.enabled: 'nope': no plugin package plugins/nope/__init__.py"
        in (result.stderr)
    )
    assert "NATS" not in result.stderr and "Redis" not in result.stderr
    assert not (project / ".rosey" / "nats").exists()


def test_a_bogus_log_level_is_refused(project: Path) -> None:
    result = subprocess.run(
        [ROSEY, "run"],
        cwd=project,
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        env={**clean_env(), "ROSEY_LOG_LEVEL": "bogus"},
    )
    assert result.returncode == 1
    assert (
        "$ROSEY_LOG_LEVEL: log_level: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, "
        "got 'bogus'"
    ) in result.stderr


def test_contract_takes_config_like_every_command(project: Path) -> None:
    shown = rosey(project, "contract", "--config", "rosey.yaml", "--markdown")
    missing = rosey(project, "contract", "--config", "r3.yaml")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("# Rosey's NATS contract")
    assert missing.returncode == 1
    assert "Error: r3.yaml: file not found" in missing.stderr


def test_a_folder_without_functions_is_warned_about(tmp_path: Path) -> None:
    result = rosey(tmp_path, "run", stdin="")
    assert result.returncode == 0, result.stderr
    assert "no functions folder functions (functions_dir): no function on disk is served" in (
        result.stderr
    )


def start(project: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    """`rosey <args>`, read up to the line giving its HTTP address."""
    return start_until(project, env, "rosey: HTTP ", *args)


async def test_a_worker_beside_rosey_run_takes_another_http_port(project: Path) -> None:
    """Both on the default http.listen: whoever comes second gets a free port, and says which."""
    env = {k: v for k, v in clean_env().items() if k != "ROSEY_HTTP_LISTEN"}
    (project / "rosey.yaml").write_text("log_level: ERROR\n")
    server, run_http = start(project, env, "run", "--no-console")
    try:
        worker, worker_http = start(project, env, "worker")
        try:
            recorded = json.loads((project / ".rosey" / "runtime.json").read_text())["http"]
            assert run_http.startswith("http://127.0.0.1:") and worker_http != run_http
            for url in (run_http, worker_http):
                status, body = await fetch_json(url + "/healthz")
                assert (status, body["status"]) == (200, "ok")
        finally:
            worker.terminate()
            worker.communicate(timeout=20)
    finally:
        server.terminate()
        server.communicate(timeout=20)
    assert recorded == run_http
    assert (worker.returncode, server.returncode) == (0, 0)
