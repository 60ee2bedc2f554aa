from __future__ import annotations

import dataclasses

import pytest

from widget_server.config import SETTINGS, ConfigError, Settings


def test_every_settings_field_is_declared_once_with_an_env_var() -> None:
    assert sorted(s.name for s in SETTINGS) == sorted(f.name for f in dataclasses.fields(Settings))
    assert all(s.env == "WIDGET_" + s.name.upper() for s in SETTINGS)


def test_environment_overrides_defaults_and_flags_override_environment() -> None:
    env = {"WIDGET_PORT": "9001", "WIDGET_DB": "/tmp/a.db", "WIDGET_HELLO_TIMEOUT": "2.5",
           "WIDGET_SECRET_KEY_FALLBACKS": "old1, old2,", "WIDGET_SQLITE_SYNCHRONOUS": "NORMAL"}
    settings = Settings.from_env(env, port=9002, db=None)
    assert settings.port == 9002
    assert settings.db == "/tmp/a.db"
    assert settings.hello_timeout == 2.5
    assert settings.secret_key_fallbacks == ("old1", "old2")
    assert settings.sqlite_synchronous == "normal"
    assert Settings.from_env({}).max_frame_bytes == 16 * 1024


@pytest.mark.parametrize(
    ("variable", "value"),
    [("WIDGET_PORT", "eighty"), ("WIDGET_HELLO_TIMEOUT", "-1"), ("WIDGET_MAX_BODY_CHARS", "0"),
     ("WIDGET_SQLITE_SYNCHRONOUS", "off"), ("WIDGET_LOG_LEVEL", "loud")],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_no_secret_key_is_built_in() -> None:
    assert Settings.from_env({}).secret_key is None


def test_base_url_prefers_the_public_url() -> None:
    assert Settings(host="0.0.0.0", port=8080).base_url == "http://127.0.0.1:8080"
    assert Settings(public_url="https://help.example.com/").base_url == "https://help.example.com"
