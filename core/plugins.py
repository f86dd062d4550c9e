"""The plugin host: builds the pluggy manager, loads plugins, collects connector types.

Built-in connectors load through the ``storesync`` entry-point group exactly like third-party packages.
Nothing is loaded at import time: call ``build_plugin_host(config)``.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from . import hookspecs
from .config import Config, pydantic_issues
from .connector import Connector, ConnectorContext
from .errors import ConfigError, ConfigIssue, PluginError, did_you_mean, known
from .mapping import MappingFile, load_mapping
from .transforms import TransformContext, TransformRegistry, builtin_transforms

__all__ = ["ENTRY_POINT_GROUP", "PluginHost", "PluginInfo", "build_plugin_host"]

ENTRY_POINT_GROUP = "storesync"
MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "mappings"
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class PluginInfo:
    """What ``storesync plugins list`` shows for one loaded plugin."""

    name: str
    distribution: str
    version: str
    connector_types: list[str] = field(default_factory=list)


class PluginHost:
    """A loaded plugin manager plus the connector types its plugins registered."""

    def __init__(self, pm: pluggy.PluginManager, infos: dict[str, PluginInfo], config: Config) -> None:
        self.pm = pm
        self.hook = pm.hook
        self.config = config
        self.infos = infos
        self.connector_types: dict[str, type[Connector]] = {}
        self._owner: dict[str, str] = {}
        self._mappings: dict[str, MappingFile] = {}
        self._transforms: TransformRegistry | None = None
        self._collect_connectors()

    # -- connector types --------------------------------------------------------------------------------

    def _collect_connectors(self) -> None:
        for impl in self.pm.hook.storesync_register_connectors.get_hookimpls():
            info = self.infos[impl.plugin_name]
            impl.function(register=lambda cls, _info=info: self._register_connector(cls, _info))

    def _register_connector(self, cls: Any, info: PluginInfo) -> None:
        where = f"plugin '{info.name}' ({info.distribution})"
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            raise PluginError(f"{where} registered {cls!r}, which is not a storesync.Connector subclass")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not _TYPE_NAME.match(name):
            raise PluginError(f"{where}: connector {cls.__qualname__} needs a `name` of lower-case letters, "
                              f"digits and '_', got {name!r}")
        if not (isinstance(cls.Settings, type) and issubclass(cls.Settings, BaseModel)):
            raise PluginError(f"{where}: {cls.__qualname__}.Settings must be a pydantic model")
        if name in self.connector_types:
            other = self.infos[self._owner[name]]
            raise PluginError(f"connector type '{name}' is registered twice: by plugin '{other.name}' "
                              f"({other.distribution}) and by {where}",
                              hint="uninstall one, or block it with [plugins] disable = [...]")
        self.connector_types[name] = cls
        self._owner[name] = info.name
        info.connector_types.append(name)

    def connector_class(self, type_name: str, *, key: str = "") -> type[Connector]:
        """The connector class for ``type_name``; unknown -> ConfigError listing the known types."""
        try:
            return self.connector_types[type_name]
        except KeyError:
            msg = (f"unknown connector type '{type_name}'{did_you_mean(type_name, self.connector_types)};"
                   f"{known(self.connector_types) if self.connector_types else ' no connector types are loaded'}")
            raise ConfigError([ConfigIssue(self.config.file_label, key, msg)]) from None

    def transform_registry(self) -> TransformRegistry:
        """The built-in transforms plus those plugins register; a name clash raises ``PluginError``."""
        registry = builtin_transforms()
        for impl in self.pm.hook.storesync_register_transforms.get_hookimpls():
            info = self.infos[impl.plugin_name]
            source = f"plugin '{info.name}' ({info.distribution})"
            impl.function(register=lambda name, factory, _s=source: registry.register(name, factory, source=_s))
        return registry

    def mapping(self, instance_id: str) -> MappingFile:
        """The compiled mapping of a connector instance: its ``mapping`` key, else its type's default."""
        if instance_id not in self._mappings:
            path, key = self.mapping_path(instance_id)
            if not path.is_file():
                raise ConfigError([ConfigIssue(self.config.file_label, key, f"mapping file {path} does not exist")])
            st = self.config.storesync
            ctx = TransformContext(timezone=st.timezone, default_region=st.default_region)
            if self._transforms is None:
                self._transforms = self.transform_registry()
            self._mappings[instance_id] = load_mapping(path, registry=self._transforms, ctx=ctx)
        return self._mappings[instance_id]

    def mapping_path(self, instance_id: str) -> tuple[Path, str]:
        """Where the mapping of ``instance_id`` lives, and the config key that decided it."""
        section = self.config.connectors[instance_id]
        key = f"connectors.{instance_id}.mapping"
        if section.mapping:
            return self.config.base_dir / section.mapping, key
        cls = self.connector_class(section.type, key=f"connectors.{instance_id}.type")
        if not cls.default_mapping:
            raise ConfigError([ConfigIssue(self.config.file_label, key,
                                           f"connector type '{section.type}' ships no default mapping; "
                                           "set `mapping` to a TOML mapping file")])
        beside = Path(inspect.getfile(cls)).parent / cls.default_mapping
        return (beside if beside.is_file() else MAPPINGS_DIR / cls.default_mapping), key

    def owner(self, type_name: str) -> PluginInfo:
        return self.infos[self._owner[type_name]]

    # -- connector instances ----------------------------------------------------------------------------

    def connector(self, instance_id: str) -> Connector:
        """Build the configured connector instance ``instance_id`` with validated settings."""
        sections = self.config.connectors
        if instance_id not in sections:
            raise ConfigError([ConfigIssue(self.config.file_label, "connectors",
                                           f"no connector '{instance_id}'{did_you_mean(instance_id, sections)};"
                                           f"{known(sections) if sections else ' none are configured'}")])
        section = sections[instance_id]
        key = f"connectors.{instance_id}"
        cls = self.connector_class(section.type, key=f"{key}.type")
        try:
            settings = cls.Settings.model_validate(section.settings_data())
        except ValidationError as exc:
            raise ConfigError(pydantic_issues(exc, self.config.file_label, prefix=key, model=cls.Settings)) from None
        st = self.config.storesync
        context = ConnectorContext(base_dir=self.config.base_dir, timezone=st.timezone,
                                   default_region=st.default_region)
        return cls(instance_id, settings, context)

    def enabled_connectors(self) -> list[str]:
        return [cid for cid, sec in self.config.connectors.items() if sec.enabled]

    def validate_connectors(self) -> list[ConfigIssue]:
        """Build every configured instance; return every problem found (for ``config check``)."""
        issues: list[ConfigIssue] = []
        for instance_id in self.config.connectors:
            try:
                self.connector(instance_id)
            except ConfigError as exc:
                issues.extend(exc.issues)
        return issues


def build_plugin_host(config: Config | None = None) -> PluginHost:
    """Create the plugin manager, load entry-point and local plugins, and collect connector types."""
    config = config or Config()
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for name in config.plugins.disable:
        pm.set_blocked(name)
    infos: dict[str, PluginInfo] = {}
    _load_entry_points(pm, infos)
    _load_local_modules(pm, infos, config)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a plugin implements a hook storesync does not define: {exc}",
                          hint="hooks are named storesync_*; see storesync/core/hookspecs.py") from None
    return PluginHost(pm, infos, config)


def _load_entry_points(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
    for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
            continue
        dist = ep.dist.name if ep.dist else "unknown"
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party package must not hide which one it is
            raise PluginError(f"plugin '{ep.name}' from distribution {dist} failed to load: "
                              f"{type(exc).__name__}: {exc}",
                              hint=f"fix or uninstall {dist}, or add '{ep.name}' to [plugins] disable") from exc
        _register(pm, infos, plugin, ep.name, dist, ep.dist.version if ep.dist else "")


def _load_local_modules(pm: pluggy.PluginManager, infos: dict[str, PluginInfo], config: Config) -> None:
    if not config.plugins.modules:
        return
    base = str(config.base_dir)
    added = base not in sys.path
    if added:
        sys.path.insert(0, base)
    try:
        for i, dotted in enumerate(config.plugins.modules):
            if pm.is_blocked(dotted):
                continue
            try:
                module = importlib.import_module(dotted)
            except Exception as exc:
                raise PluginError([ConfigIssue(config.file_label, f"plugins.modules[{i}]",
                                               f"cannot import '{dotted}': {type(exc).__name__}: {exc}")]) from exc
            _register(pm, infos, module, dotted, "local module", "")
    finally:
        if added:
            sys.path.remove(base)


def _register(pm: pluggy.PluginManager, infos: dict[str, PluginInfo], plugin: Any, name: str,
              dist: str, version: str) -> None:
    try:
        pm.register(plugin, name=name)
    except ValueError as exc:
        raise PluginError(f"plugin '{name}' ({dist}) could not be registered: {exc}") from None
    infos[name] = PluginInfo(name=name, distribution=dist, version=version)
