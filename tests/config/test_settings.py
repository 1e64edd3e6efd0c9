from pathlib import Path

import pytest

from runtime.config import settings
from runtime.config.manifest import display_path
from runtime.errors import ConfigError, HttpError


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


def test_errors_name_the_config_path_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as missing:
        settings.load(Path("/nope/rosey.yaml"), environ={})
    (tmp_path / "r2.yaml").write_text("nats: {ulr: x}\n")
    with pytest.raises(ConfigError) as wrong:
        settings.load(Path("r2.yaml"), environ={})
    assert str(missing.value) == "/nope/rosey.yaml: file not found"
    assert str(wrong.value).startswith("r2.yaml: nats.ulr: unknown key")


def test_log_level_and_other_choices_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as bogus:
        settings.load(None, environ={"ROSEY_LOG_LEVEL": "bogus"})
    with pytest.raises(ConfigError) as isolation:
        settings.load(write(tmp_path, "isolation: {default: thread}\n"), environ={})
    assert str(bogus.value) == (
        "$ROSEY_LOG_LEVEL: log_level: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, "
        "got 'bogus'"
    )
    assert "isolation.default: expected one of none, process, got 'thread'" in str(isolation.value)
    s = settings.load(write(tmp_path, "log_level: debug\nlog_format: json\n"), environ={})
    assert (s.log_level, s.log_format) == ("DEBUG", "json")


def test_check_names_the_config_file_and_the_missing_plugin(tmp_path: Path) -> None:
    path = tmp_path / "r2.yaml"
    path.write_text("plugins: {enabled: [nope]}\nhttp: {listen: '127.0.0.1:8080'}\n")
    s = settings.load(path, environ={})
    with pytest.raises(ConfigError) as missing:
        s.check()
    s.check(plugins=False)  # a worker starts no plugins
    s.http.listen = "8080"
    with pytest.raises(HttpError) as listen:
        s.check(plugins=False)
    assert str(missing.value) == (
        f"{path}: plugins.enabled: 'nope': no plugin package "
        f"{display_path(tmp_path / 'plugins' / 'nope')}/__init__.py"
    )
    assert "expected host:port" in str(listen.value)


def test_source_is_not_a_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source: unknown key"):
        settings.load(write(tmp_path, "source: x.yaml\n"), environ={})
    assert "ROSEY_SOURCE" not in settings.env_keys()


def test_nats_url_takes_a_list_or_the_comma_form(tmp_path: Path) -> None:
    listed = write(tmp_path, "nats:\n  url: [nats://a:4222, 'tls://b:4222']\n")
    assert settings.load(listed, environ={}).nats.url == "nats://a:4222,tls://b:4222"
    comma = write(tmp_path, "nats: {url: 'nats://a:4222, nats://b:4222,nats://c:4222'}\n")
    s = settings.load(comma, environ={"ROSEY_NATS_URL": "nats://x:1,nats://y:2"})
    assert s.nats.url == "nats://x:1,nats://y:2"
    assert settings.nats_servers(s.nats.url) == ["nats://x:1", "nats://y:2"]


@pytest.mark.parametrize(
    "value", ["'nats://a:4222,http://b:80'", "'nats://a:4222,b:4222'", "[nats://a:1, 7]", "''"]
)
def test_nats_url_names_the_bad_server(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"nats:\n  url: {value}\n")
    with pytest.raises(ConfigError) as info:
        settings.load(path, environ={})
    assert info.value.key == "nats.url"
