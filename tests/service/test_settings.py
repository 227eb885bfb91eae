"""Settings: environment, *_FILE, secrets dir, precedence, and the one-line SettingsError."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from eafix import services
from eafix.runtime.settings import (
    Settings,
    SettingsError,
    load_settings,
    postgres_conninfo,
    postgres_credentials,
    redact,
    redis_url,
)


def error_of(**kwargs) -> str:
    with pytest.raises(SettingsError) as err:
        Settings(**kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("SERVICE_NAME", "risk-manager")
    monkeypatch.setenv("SERVICE_PORT", "9999")
    monkeypatch.setenv("SERVICE_LOG_LEVEL", "debug")
    monkeypatch.setenv("SERVICE_REDIS_URL", "redis://redis-master:6379/0")
    monkeypatch.setenv("SERVICE_POSTGRES_URL", "postgresql://postgresql:5432/eafix_trading?sslmode=prefer")
    monkeypatch.setenv("SERVICE_POSTGRES_USER", "trader")
    s = Settings()
    assert (s.name, s.port, s.log_level) == ("risk-manager", 9999, "DEBUG")
    assert s.redis_url == "redis://redis-master:6379/0"
    assert s.postgres_url.endswith("/eafix_trading?sslmode=prefer")
    assert s.postgres_user == "trader"
    assert s.redis_password is None and s.postgres_password is None


def test_port_defaults_to_the_catalogue():
    assert Settings(name="compliance-monitor").port == 9201
    assert Settings(name="reporter").port == services.get("reporter").port


def test_default_secrets_dir_is_the_charts_mount():
    assert Settings(name="reporter").secrets_dir == Path("/var/run/secrets/eafix")


def test_file_variable_is_read_without_trailing_newline(tmp_path, monkeypatch):
    secret = tmp_path / "pw"
    secret.write_text("s3cr3t\n")
    monkeypatch.setenv("SERVICE_REDIS_PASSWORD_FILE", str(secret))
    s = Settings(name="reporter")
    assert s.redis_password.get_secret_value() == "s3cr3t"


def test_secrets_dir_files(secrets_dir):
    secrets_dir(SERVICE_POSTGRES_USER="eafix", SERVICE_POSTGRES_PASSWORD="pg pw", SERVICE_MT4_API_KEY="k")
    s = Settings(name="execution-engine")
    assert s.postgres_user == "eafix"
    assert s.postgres_password.get_secret_value() == "pg pw"


def test_crlf_file_is_stripped(secrets_dir):
    directory = secrets_dir()
    (directory / "SERVICE_POSTGRES_USER").write_bytes(b"eafix\r\n")
    assert Settings(name="reporter").postgres_user == "eafix"


def test_only_one_trailing_newline_is_stripped(secrets_dir):
    secrets_dir(SERVICE_REDIS_PASSWORD="ends-with-newline\n")  # the fixture adds another
    assert Settings(name="reporter").redis_password.get_secret_value() == "ends-with-newline\n"


def test_precedence_env_then_file_variable_then_secrets_dir(tmp_path, monkeypatch, secrets_dir):
    secrets_dir(SERVICE_POSTGRES_USER="from-dir")
    assert Settings(name="reporter").postgres_user == "from-dir"

    named = tmp_path / "user"
    named.write_text("from-file-var\n")
    monkeypatch.setenv("SERVICE_POSTGRES_USER_FILE", str(named))
    assert Settings(name="reporter").postgres_user == "from-file-var"

    monkeypatch.setenv("SERVICE_POSTGRES_USER", "from-env")
    assert Settings(name="reporter").postgres_user == "from-env"

    assert Settings(name="reporter", postgres_user="from-kwargs").postgres_user == "from-kwargs"


def test_empty_env_value_counts_as_unset(monkeypatch, secrets_dir):
    secrets_dir(SERVICE_POSTGRES_USER="from-dir")
    monkeypatch.setenv("SERVICE_POSTGRES_USER", "")
    assert Settings(name="reporter").postgres_user == "from-dir"


def test_secrets_dir_keyword_is_used_for_lookup(tmp_path):
    (tmp_path / "SERVICE_POSTGRES_USER").write_text("kw\n")
    assert Settings(name="reporter", secrets_dir=tmp_path).postgres_user == "kw"


def test_peer_urls_are_collected_by_service_name(monkeypatch):
    monkeypatch.setenv("SERVICE_RISK_MANAGER_URL", "http://risk-manager:8084/")
    monkeypatch.setenv("SERVICE_GUI_GATEWAY_URL", "https://gui-gateway:8080")
    monkeypatch.setenv("SERVICE_REDIS_URL", "redis://r:6379/0")
    s = Settings(name="signal-generator")
    assert s.peers == {"risk-manager": "http://risk-manager:8084", "gui-gateway": "https://gui-gateway:8080"}


def test_missing_name_names_the_variable():
    message = error_of()
    assert message.startswith("SERVICE_NAME: missing")


def test_unknown_service_name(monkeypatch):
    monkeypatch.setenv("SERVICE_NAME", "nope")
    message = error_of()
    assert message.startswith("SERVICE_NAME: unknown service 'nope'")
    assert "gui-gateway" in message


@pytest.mark.parametrize(("var", "value", "expected"), [
    ("SERVICE_PORT", "eighty", "valid integer"),
    ("SERVICE_PORT", "70000", "less than or equal to 65535"),
    ("SERVICE_LOG_LEVEL", "TRACE", "DEBUG, INFO, WARNING, ERROR"),
    ("SERVICE_REDIS_URL", "http://redis:6379", "redis://"),
    ("SERVICE_REDIS_URL", "redis://redis:six/0", "Port"),
    ("SERVICE_REDIS_URL", "redis://redis:6379/bus", "not a number"),
    ("SERVICE_POSTGRES_URL", "mysql://db/eafix", "postgresql://"),
    ("SERVICE_POSTGRES_URL", "postgresql://db/eafix?bogus=1", "bogus"),
    ("SERVICE_RISK_MANAGER_URL", "risk-manager:8084", "http://"),
])
def test_malformed_value_names_the_variable(monkeypatch, var, value, expected):
    monkeypatch.setenv(var, value)
    message = error_of(name="signal-generator")
    assert message.startswith(f"{var}: ")
    assert expected in message


def test_malformed_value_from_a_file_says_which_file(secrets_dir):
    directory = secrets_dir(SERVICE_PORT="http")
    message = error_of(name="reporter")
    assert message.startswith("SERVICE_PORT: ")
    assert str(directory / "SERVICE_PORT") in message


def test_all_errors_on_one_line(monkeypatch):
    monkeypatch.setenv("SERVICE_PORT", "x")
    monkeypatch.setenv("SERVICE_LOG_LEVEL", "loud")
    message = error_of(name="reporter")
    assert "SERVICE_PORT: " in message and "; SERVICE_LOG_LEVEL: " in message


def test_unreadable_file_variable_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVICE_REDIS_PASSWORD_FILE", str(tmp_path / "absent"))
    message = error_of(name="reporter")
    assert message.startswith("SERVICE_REDIS_PASSWORD_FILE: cannot read ")
    assert "No such file" in message


def test_secret_values_stay_out_of_reprs_and_errors(monkeypatch, secrets_dir):
    secrets_dir(SERVICE_REDIS_PASSWORD="hunter2", SERVICE_POSTGRES_PASSWORD="hunter3")
    s = Settings(name="reporter")
    assert "hunter2" not in repr(s) and "hunter3" not in repr(s)
    monkeypatch.setenv("SERVICE_PORT", "bad")
    assert "hunter" not in error_of(name="reporter")


def test_load_settings_requires_the_services_backends(monkeypatch):
    with pytest.raises(SettingsError, match=r"^SERVICE_REDIS_URL: missing; data-ingestor needs Redis$"):
        load_settings(services.get("data-ingestor"))
    monkeypatch.setenv("SERVICE_REDIS_URL", "redis://r:6379/0")
    assert load_settings(services.get("data-ingestor")).redis_url == "redis://r:6379/0"
    with pytest.raises(SettingsError, match=r"^SERVICE_POSTGRES_URL: missing"):
        load_settings(services.get("reporter"))
    monkeypatch.setenv("SERVICE_POSTGRES_URL", "postgresql://db:5432/eafix")
    with pytest.raises(SettingsError, match=r"^SERVICE_POSTGRES_USER: missing"):
        load_settings(services.get("reporter"))
    monkeypatch.setenv("SERVICE_POSTGRES_URL", "postgresql://eafix@db:5432/eafix")
    assert load_settings(services.get("reporter")).postgres_user is None  # the URL names the user


def test_load_settings_rejects_another_services_name(monkeypatch):
    monkeypatch.setenv("SERVICE_NAME", "reporter")
    monkeypatch.setenv("SERVICE_REDIS_URL", "redis://r:6379/0")
    with pytest.raises(SettingsError, match=r"^SERVICE_NAME: 'reporter' does not match .*'data-ingestor'"):
        load_settings(services.get("data-ingestor"))


def test_redis_url_inserts_the_quoted_password():
    s = Settings(name="reporter", redis_url="redis://redis-master:6379/0",
                 redis_password=SecretStr("p@ss:/w"))
    assert redis_url(s) == "redis://:p%40ss%3A%2Fw@redis-master:6379/0"
    assert redact(redis_url(s)) == "redis://:***@redis-master:6379/0"
    with_user = Settings(name="reporter", redis_url="rediss://bus@r:6380/1", redis_password=SecretStr("x"))
    assert redis_url(with_user) == "rediss://bus:x@r:6380/1"
    assert redis_url(Settings(name="reporter", redis_url="redis://r/0")) == "redis://r/0"
    assert redis_url(Settings(name="reporter")) is None


def test_postgres_credentials_travel_apart_from_the_conninfo():
    s = Settings(name="reporter", postgres_url="postgresql://db:5432/eafix?sslmode=require",
                 postgres_user="eafix", postgres_password=SecretStr("pw"))
    assert postgres_conninfo(s) == "postgresql://db:5432/eafix?sslmode=require"
    assert "pw" not in postgres_conninfo(s)
    assert postgres_credentials(s) == {"user": "eafix", "password": "pw"}
    assert postgres_credentials(Settings(name="reporter")) == {}


def test_defaults_read_no_environment(monkeypatch):
    monkeypatch.setenv("SERVICE_PORT", "not-a-port")
    s = Settings.defaults(services.get("risk-manager"))
    assert (s.name, s.port, s.redis_url, s.peers) == ("risk-manager", 8084, None, {})


class WithSymbols(Settings):
    """A service's own settings: extra fields get the same sources."""

    symbols: list[str] = ["EURUSD"]
    mt4_api_key: SecretStr | None = None


def test_subclass_fields_read_json_and_secret_files(monkeypatch, secrets_dir):
    secrets_dir(SERVICE_MT4_API_KEY="mt4-key")
    monkeypatch.setenv("SERVICE_SYMBOLS", '["GBPUSD", "USDJPY"]')
    s = WithSymbols(name="execution-engine")
    assert s.symbols == ["GBPUSD", "USDJPY"]
    assert s.mt4_api_key.get_secret_value() == "mt4-key"
    monkeypatch.setenv("SERVICE_SYMBOLS", "GBPUSD,USDJPY")
    with pytest.raises(SettingsError, match=r"^SERVICE_SYMBOLS: not valid JSON"):
        WithSymbols(name="execution-engine")
