"""plugins.toml: discovery, ${ENV} references, validation errors that name file, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from storesync.core.config import find_config, load_config
from storesync.core.errors import ConfigError, StoreError
from storesync.core.plugins import build_plugin_host
from storesync.core.store import Store


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STORESYNC_CONFIG", raising=False)
    config = load_config()
    assert config.path is None
    assert config.storesync.batch_size == 1000
    assert config.database_url() == f"sqlite:///{tmp_path.resolve() / 'storesync.db'}"


def test_discovery_order(tmp_path, monkeypatch):
    local = write(tmp_path / "plugins.toml", "")
    env = write(tmp_path / "env.toml", "")
    explicit = write(tmp_path / "explicit.toml", "")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STORESYNC_CONFIG", raising=False)
    assert find_config() == local.resolve()
    monkeypatch.setenv("STORESYNC_CONFIG", str(env))
    assert find_config() == env.resolve()
    assert find_config(explicit) == explicit.resolve()
    with pytest.raises(ConfigError, match="no such configuration file"):
        find_config(tmp_path / "missing.toml")


def test_typo_in_key_names_file_key_and_suggestion(tmp_path):
    path = write(tmp_path / "plugins.toml", '[storesync]\ndatabse = "sqlite:///x.db"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (issue,) = info.value.issues
    assert issue.file == str(path)
    assert issue.key == "storesync.databse"
    assert "did you mean 'database'?" in issue.message
    assert info.value.exit_code == 2


def test_unknown_section_suggests_the_right_one(tmp_path):
    path = write(tmp_path / "plugins.toml", '[conectors.a]\ntype = "files"\n')
    with pytest.raises(ConfigError, match="did you mean 'connectors'"):
        load_config(path)


def test_all_issues_reported_at_once(tmp_path):
    path = write(tmp_path / "plugins.toml", '[storesync]\ntimezone = "Mars/Base"\nbatch_size = 0\n'
                                            'default_region = "Hong Kong"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    keys = sorted(i.key for i in info.value.issues)
    assert keys == ["storesync.batch_size", "storesync.default_region", "storesync.timezone"]
    assert "IANA" in str(info.value)


def test_env_reference_expanded_and_missing_variable_named(tmp_path, monkeypatch):
    path = write(tmp_path / "plugins.toml",
                 '[connectors.a]\ntype = "example"\ntoken = "${EXAMPLE_TOKEN}"\n')
    monkeypatch.delenv("EXAMPLE_TOKEN", raising=False)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: connectors.a.token: environment variable EXAMPLE_TOKEN is not set"
    monkeypatch.setenv("EXAMPLE_TOKEN", "s3cret-canary")
    assert load_config(path).connectors["a"].settings_data() == {"token": "s3cret-canary"}


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path / "plugins.toml", "[storesync\n")
    with pytest.raises(ConfigError, match=r"plugins.toml: invalid TOML"):
        load_config(path)


def test_unknown_connector_type_lists_known_ones(tmp_path):
    path = write(tmp_path / "plugins.toml", '[connectors.tills]\ntype = "fils"\ndirectory = "."\n')
    host = build_plugin_host(load_config(path))
    issues = host.validate_connectors()
    assert len(issues) == 1
    assert issues[0].key == "connectors.tills.type"
    assert "unknown connector type 'fils'; did you mean 'files'?" in issues[0].message
    assert "known: " in issues[0].message and "files" in issues[0].message.split("known: ")[1]


def test_connector_settings_validated_by_its_model(tmp_path):
    path = write(tmp_path / "plugins.toml",
                 '[connectors.tills]\ntype = "files"\ndirectory = "."\ndirectroy = "x"\n'
                 '[connectors.tills.files.orders]\npattern = "*.jsonl"\n')
    host = build_plugin_host(load_config(path))
    (issue,) = host.validate_connectors()
    assert issue.key == "connectors.tills.directroy"
    assert "did you mean 'directory'?" in issue.message


def test_relative_sqlite_path_resolves_next_to_the_config(tmp_path):
    sub = tmp_path / "merchant"
    sub.mkdir()
    path = write(sub / "plugins.toml", '[storesync]\ndatabase = "sqlite:///data/store.db"\n')
    assert load_config(path).database_url() == f"sqlite:///{sub.resolve() / 'data/store.db'}"


@pytest.mark.parametrize("url, message", [
    ("not a url", "invalid database URL"),
    ("mysql://root@localhost/x", "unsupported database 'mysql'"),
])
def test_bad_database_url(url, message):
    with pytest.raises(StoreError, match=message) as info:
        Store(url)
    assert info.value.exit_code == 2


def test_password_never_shown_in_store_errors():
    with pytest.raises(StoreError) as info:
        Store("postgresql://user:hunter2-canary@127.0.0.1:1/nodb")
    assert "hunter2-canary" not in str(info.value)
    assert "***" in str(info.value)
