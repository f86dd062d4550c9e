"""The plugin contract: entry-point discovery, blocking, local modules, clashes, and every hook."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import storesync
from storesync.core import hookspecs
from storesync.core.config import load_config
from storesync.core.errors import PluginError
from storesync.core.models import Event
from storesync.core.plugins import build_plugin_host


def config_at(tmp_path: Path, text: str):
    path = tmp_path / "plugins.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def local_plugin(tmp_path: Path, name: str, body: str) -> None:
    (tmp_path / f"{name}.py").write_text("from storesync import Connector, Stream, hookimpl\n" + body)


def test_public_all_is_sorted_and_importable():
    assert storesync.__all__ == sorted(storesync.__all__)
    for name in storesync.__all__:
        assert getattr(storesync, name) is not None


def test_builtin_files_connector_loads_through_its_entry_point():
    host = build_plugin_host()
    assert "files" in host.connector_types
    assert host.owner("files").distribution == "storesync"
    assert host.connector_types["files"].name == "files"


def test_every_hook_has_a_typed_documented_spec():
    assert hookspecs.HOOK_NAMES == ["storesync_event", "storesync_record_mapped", "storesync_register_connectors",
                                    "storesync_register_transforms", "storesync_sync_finished"]
    for name in hookspecs.HOOK_NAMES:
        fn = getattr(hookspecs, name)
        assert fn.__doc__ and "Return" in fn.__doc__, name
        assert fn.__annotations__, name


def test_third_party_plugin_discovered_and_its_transform_registered(example_plugin):
    host = build_plugin_host()
    assert host.connector_types["example"].__module__ == "storesync_example"
    info = host.owner("example")
    assert (info.distribution, info.version) == ("storesync-example", "1.2.3")
    assert host.connector_types["example"].capabilities() == ["send_message"]
    registry = host.transform_registry()
    assert "shout" in registry.names()


def test_disabled_plugin_is_not_loaded(example_plugin, tmp_path):
    host = build_plugin_host(config_at(tmp_path, '[plugins]\ndisable = ["example"]\n'))
    assert "example" not in host.connector_types
    assert "files" in host.connector_types


def test_plugins_list_json_shows_then_hides_the_plugin(example_plugin, tmp_path, cli):
    (tmp_path / "plugins.toml").write_text("")
    shown = cli("plugins", "list", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = {r["connector_type"]: r for r in json.loads(shown.stdout)}
    assert rows["example"]["distribution"] == "storesync-example"
    assert rows["example"]["capabilities"] == ["send_message"]
    (tmp_path / "plugins.toml").write_text('[plugins]\ndisable = ["example"]\n')
    hidden = cli("plugins", "list", "--json", cwd=tmp_path)
    assert "example" not in {r["connector_type"] for r in json.loads(hidden.stdout)}


def test_local_module_plugin_by_dotted_path(tmp_path):
    local_plugin(tmp_path, "my_till", '''
class Till(Connector):
    name = "my_till"
    def streams(self):
        return [Stream("sales", "order", reader=lambda cursor: iter([]))]
    def check(self):
        return "ok"

@hookimpl
def storesync_register_connectors(register):
    register(Till)
''')
    host = build_plugin_host(config_at(tmp_path, '[plugins]\nmodules = ["my_till"]\n'))
    assert host.owner("my_till").distribution == "local module"


def test_local_module_that_fails_to_import_is_named(tmp_path):
    with pytest.raises(PluginError, match=r"plugins.modules\[0\]: cannot import 'no_such_mod'"):
        build_plugin_host(config_at(tmp_path, '[plugins]\nmodules = ["no_such_mod"]\n'))


def test_same_connector_type_twice_names_both(tmp_path):
    local_plugin(tmp_path, "dup_files", '''
class Dup(Connector):
    name = "files"

@hookimpl
def storesync_register_connectors(register):
    register(Dup)
''')
    with pytest.raises(PluginError) as info:
        build_plugin_host(config_at(tmp_path, '[plugins]\nmodules = ["dup_files"]\n'))
    message = str(info.value)
    assert "connector type 'files' is registered twice" in message
    assert "(storesync)" in message and "(local module)" in message


def test_registering_a_non_connector_is_rejected(tmp_path):
    local_plugin(tmp_path, "bad_reg", '''
@hookimpl
def storesync_register_connectors(register):
    register(dict)
''')
    with pytest.raises(PluginError, match="not a storesync.Connector subclass"):
        build_plugin_host(config_at(tmp_path, '[plugins]\nmodules = ["bad_reg"]\n'))


def test_hookimpl_without_spec_fails_fast(tmp_path):
    local_plugin(tmp_path, "typo_hook", '''
@hookimpl
def storesync_register_conectors(register):
    pass
''')
    with pytest.raises(PluginError, match="implements a hook storesync does not define"):
        build_plugin_host(config_at(tmp_path, '[plugins]\nmodules = ["typo_hook"]\n'))


def test_event_hook_fans_out_to_every_listener(tmp_path):
    for name in ("listener_a", "listener_b"):
        local_plugin(tmp_path, name, '''
SEEN = []

@hookimpl
def storesync_event(event):
    SEEN.append(event.id)
''')
    host = build_plugin_host(config_at(tmp_path, '[plugins]\nmodules = ["listener_a", "listener_b"]\n'))
    host.hook.storesync_event(event=Event(type="order.accepted", id="e1", occurred_at=datetime.now(UTC)))
    import listener_a
    import listener_b
    assert listener_a.SEEN == ["e1"] and listener_b.SEEN == ["e1"]
