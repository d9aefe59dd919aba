"""Settings are read once from the environment, with working defaults and loud errors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from perkflow.settings import Settings, SettingsError


def test_the_defaults_work_without_any_variable():
    settings = Settings.from_env({})
    assert settings == Settings(
        database_url="sqlite:///data/perkflow.sqlite",
        data_dir=Path("data"),
        host="127.0.0.1",
        port=8080,
        max_body=1024 * 1024,
    )


def test_every_variable_is_read():
    key = base64.b64encode(b"k" * 32).decode()
    settings = Settings.from_env(
        {
            "PERKFLOW_DATABASE_URL": "postgresql://perkflow@db/perkflow",
            "PERKFLOW_DATA_DIR": "/srv/perkflow",
            "PERKFLOW_DATA_KEY": key,
            "PERKFLOW_HOST": "0.0.0.0",
            "PERKFLOW_PORT": "9000",
            "PERKFLOW_MAX_BODY": "2048",
        }
    )
    assert settings == Settings(
        "postgresql://perkflow@db/perkflow", Path("/srv/perkflow"), key, "0.0.0.0", 9000, 2048
    )
    assert (
        Settings.from_env({"PERKFLOW_DATA_DIR": "/srv/pf"}).database_url
        == "sqlite:////srv/pf/perkflow.sqlite"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PERKFLOW_PORT", "http", "PERKFLOW_PORT has value 'http': not a whole number"),
        ("PERKFLOW_PORT", "70000", "PERKFLOW_PORT has value '70000': expected 1 to 65535"),
        ("PERKFLOW_MAX_BODY", "1mb", "PERKFLOW_MAX_BODY has value '1mb': not a whole number"),
        ("PERKFLOW_DATABASE_URL", "mysql://x", "PERKFLOW_DATABASE_URL has value 'mysql://x'"),
        ("PERKFLOW_DATA_KEY", "not base64!", "PERKFLOW_DATA_KEY is not base64"),
        (
            "PERKFLOW_DATA_KEY",
            base64.b64encode(b"short").decode(),
            "PERKFLOW_DATA_KEY decodes to 5 bytes: expected 32",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str, message: str):
    with pytest.raises(
        SettingsError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")
    ):
        Settings.from_env({name: value})


def test_a_rotation_configures_the_new_key_then_the_old_and_a_bad_one_is_named_by_position():
    new, old = base64.b64encode(b"n" * 32).decode(), base64.b64encode(b"o" * 32).decode()
    assert Settings.from_env({"PERKFLOW_DATA_KEY": f"{new},{old}"}).data_key == f"{new},{old}"
    with pytest.raises(SettingsError, match=r"PERKFLOW_DATA_KEY decodes to 5 bytes: expected 32 \(key 2\)"):
        Settings.from_env({"PERKFLOW_DATA_KEY": f"{new},{base64.b64encode(b'short').decode()}"})


def test_rate_limits_metrics_and_logs_have_defaults_and_are_read():
    defaults = Settings.from_env({})
    assert (defaults.rate_per_key, defaults.burst_per_key) == (100, 200)
    assert (defaults.rate_per_address, defaults.burst_per_address) == (100, 200)
    assert (defaults.metrics_token, defaults.log_format) == (None, "json")
    settings = Settings.from_env(
        {
            "PERKFLOW_RATE_PER_KEY": "5",
            "PERKFLOW_BURST_PER_KEY": "10",
            "PERKFLOW_RATE_PER_ADDRESS": "0",
            "PERKFLOW_BURST_PER_ADDRESS": "3",
            "PERKFLOW_METRICS_TOKEN": "m" * 32,
            "PERKFLOW_LOG_FORMAT": "text",
        }
    )
    assert (settings.rate_per_key, settings.burst_per_key, settings.rate_per_address, settings.burst_per_address) == (5, 10, 0, 3)
    assert (settings.metrics_token, settings.log_format) == ("m" * 32, "text")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PERKFLOW_RATE_PER_KEY", "-1", "PERKFLOW_RATE_PER_KEY has value '-1': expected 0 to 1000000"),
        ("PERKFLOW_BURST_PER_ADDRESS", "0", "PERKFLOW_BURST_PER_ADDRESS has value '0': expected 1 to 1000000"),
        ("PERKFLOW_METRICS_TOKEN", "short", "PERKFLOW_METRICS_TOKEN is 5 characters: expected at least 16"),
        ("PERKFLOW_LOG_FORMAT", "xml", "PERKFLOW_LOG_FORMAT has value 'xml': expected one of json, text"),
    ],
)
def test_a_bad_limit_token_or_log_format_is_refused(name: str, value: str, message: str):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})


def test_secrets_are_not_in_the_settings_repr():
    key = base64.b64encode(b"k" * 32).decode()
    shown = repr(Settings.from_env({"PERKFLOW_DATA_KEY": key, "PERKFLOW_METRICS_TOKEN": "s3cret-metrics-token"}))
    assert key not in shown and "s3cret-metrics-token" not in shown
