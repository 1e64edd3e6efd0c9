from pathlib import Path

import pytest

from runtime.config import settings
from runtime.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rosey.yaml"
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = settings.load(None, environ={})
    assert s.nats.url is None
    assert s.redis.url is None
    assert s.cytube is None
    assert s.command_prefix == "!"
    assert s.data_dir == tmp_path / ".rosey"


def test_values_from_file_relative_to_it(tmp_path: Path) -> None:
    path = write(tmp_path, "nats: {url: 'nats://h:1'}\ndata_dir: state\ncommand_prefix: '?'\n")
    s = settings.load(path, environ={})
    assert s.nats.url == "nats://h:1"
    assert s.data_dir == tmp_path / "state"
    assert s.command_prefix == "?"


def test_env_interpolation(tmp_path: Path) -> None:
    path = write(
        tmp_path, "cytube:\n  url: https://x\n  password: ${PW}\n  channel: ${CH:-lobby}\n"
    )
    s = settings.load(path, environ={"PW": "secret"})
    assert s.cytube is not None
    assert (s.cytube.password, s.cytube.channel) == ("secret", "lobby")


def test_missing_env_variable_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "cytube:\n  password: ${NOPE}\n")
    with pytest.raises(ConfigError) as info:
        settings.load(path, environ={})
    assert (
        str(info.value)
        == f"{info.value.source}: cytube.password: environment variable NOPE is not set"
    )


def test_rosey_env_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "nats: {url: 'nats://file:1'}\n")
    env = {
        "ROSEY_NATS_URL": "nats://env:2",
        "ROSEY_REDIS_URL": "redis://r/0",
        "ROSEY_HEARTBEAT_INTERVAL": "5",
        "ROSEY_CYTUBE_CHANNEL": "mine",
    }
    s = settings.load(path, environ=env)
    assert s.nats.url == "nats://env:2"
    assert s.redis.url == "redis://r/0"
    assert s.heartbeat_interval == 5.0
    assert s.cytube is not None
    assert s.cytube.channel == "mine"


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings.load(write(tmp_path, "nats: {ulr: x}\n"), environ={})
    assert info.value.key == "nats.ulr"
    assert (
        "unknown key; expected one of: connect_timeout, creds, nkey_seed, password, tls_ca, tls_cert, tls_key, token, url, user"
        in str(info.value)
    )


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings.load(write(tmp_path, "heartbeat_interval: often\n"), environ={})
    assert str(info.value).endswith("heartbeat_interval: expected a number, got 'often'")
    with pytest.raises(ConfigError) as info:
        settings.load(write(tmp_path, "nats: 3\n"), environ={})
    assert info.value.key == "nats"


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings.load(write(tmp_path, ""), environ={"ROSEY_SYNC_WORKERS": "lots"})
    assert (
        str(info.value) == "$ROSEY_SYNC_WORKERS: sync_workers: expected a whole number, got 'lots'"
    )


def test_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings.load(tmp_path / "nope.yaml", environ={})
    assert "file not found" in str(info.value)


def test_yaml_error_in_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings.load(write(tmp_path, "nats: [\n"), environ={})
    assert "YAML syntax error" in str(info.value)


def test_env_keys_cover_nested_sections() -> None:
    keys = settings.env_keys()
    assert keys["ROSEY_NATS_URL"] == "nats.url"
    assert keys["ROSEY_CYTUBE_PASSWORD"] == "cytube.password"
    assert keys["ROSEY_DATA_DIR"] == "data_dir"


def test_nats_credentials_become_connect_options(tmp_path: Path) -> None:
    from runtime.wire.natsauth import auth_options

    path = write(
        tmp_path,
        "nats:\n  url: nats://h:4222\n  user: bot\n  password: ${NATS_PW}\n  creds: bot.creds\n",
    )
    s = settings.load(path, environ={"NATS_PW": "pw"})
    assert auth_options(s.nats) == {
        "user": "bot",
        "password": "pw",
        "user_credentials": "bot.creds",
    }
    assert auth_options(settings.Settings().nats) == {}
