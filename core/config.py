"""plugins.toml: finding it, expanding ``${ENV}`` references, validating it with precise errors.

Every problem becomes a ``ConfigIssue`` (``file: key.path: message``); all of them are collected before one
``ConfigError`` is raised, so a merchant fixes a file in one pass.
"""

from __future__ import annotations

import os
import re
import tomllib
import zoneinfo
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError, ConfigIssue, did_you_mean

__all__ = [
    "Config",
    "ConnectorSection",
    "PluginsSection",
    "StoresyncSection",
    "find_config",
    "load_config",
    "pydantic_issues",
    "settings_or_raise",
]

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
GENERIC_CONNECTOR_KEYS = ("type", "enabled", "streams", "mapping")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoresyncSection(_Strict):
    """``[storesync]``: where the store lives and the merchant's locale."""

    database: str = "sqlite:///storesync.db"
    default_region: str | None = Field(None, description="phone region for numbers without +, e.g. 'HK'")
    timezone: str = "UTC"
    batch_size: int = Field(1000, ge=1, le=100_000)
    workers: int | None = Field(None, ge=0, le=64, description="processes that map pages of big syncs; "
                                "0: none; unset: one per CPU, at most 4")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}; use an IANA name like 'Asia/Hong_Kong'") from None
        return value

    @field_validator("default_region")
    @classmethod
    def _upper_region(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError(f"default_region must be a two-letter region code like 'HK', got {value!r}")
        return value.upper() if value else value


class PluginsSection(_Strict):
    """``[plugins]``: plugins to block by name and local plugin modules to load by dotted path."""

    disable: list[str] = Field(default_factory=list)
    modules: list[str] = Field(default_factory=list)


class ConnectorSection(BaseModel):
    """``[connectors.<id>]``: the generic keys; the rest is the connector type's own ``Settings``."""

    model_config = ConfigDict(extra="allow")

    type: str
    enabled: bool = True
    streams: list[str] | None = None
    mapping: str | None = None

    def settings_data(self) -> dict[str, Any]:
        """The keys left for the connector's ``Settings`` model."""
        return dict(self.model_extra or {})


class Config(_Strict):
    """A validated plugins.toml. ``path`` is ``None`` when no file was found (built-in defaults)."""

    path: Path | None = None
    base_dir: Path = Field(default_factory=Path.cwd)
    storesync: StoresyncSection = Field(default_factory=StoresyncSection)
    plugins: PluginsSection = Field(default_factory=PluginsSection)
    connectors: dict[str, ConnectorSection] = Field(default_factory=dict)
    identity: dict[str, Any] = Field(default_factory=dict)
    inventory: dict[str, Any] = Field(default_factory=dict)
    notifications: dict[str, Any] = Field(default_factory=dict)

    @property
    def file_label(self) -> str:
        return str(self.path) if self.path else "plugins.toml"

    def database_url(self) -> str:
        """The database URL, a relative SQLite path resolved next to the configuration file."""
        url = self.storesync.database
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            path = Path(url[len(prefix):]).expanduser()
            if not path.is_absolute():
                return prefix + str((self.base_dir / path).resolve())
        return url


def find_config(explicit: str | Path | None = None) -> Path | None:
    """``--config``, then ``$STORESYNC_CONFIG``, then ``./plugins.toml``; ``None`` if none exists."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError([ConfigIssue(str(path), "", "no such configuration file")],
                              hint="pass an existing file to --config")
        return path.resolve()
    env = os.environ.get("STORESYNC_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError([ConfigIssue(str(path), "", "STORESYNC_CONFIG names a file that does not exist")])
        return path.resolve()
    local = Path.cwd() / "plugins.toml"
    return local.resolve() if local.is_file() else None


def load_config(explicit: str | Path | None = None) -> Config:
    """Find, parse, expand and validate plugins.toml (connector settings are validated by the plugin host)."""
    path = find_config(explicit)
    if path is None:
        return Config()
    label = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigIssue(label, "", f"invalid TOML: {exc}")]) from None
    except RecursionError:  # tomllib recurses per nested array or inline table
        raise ConfigError([ConfigIssue(label, "", "invalid TOML: arrays or tables nested too deeply")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(label, "", f"cannot read: {exc}")]) from None
    issues: list[ConfigIssue] = []
    data = expand_env(raw, label, issues)
    try:
        config = Config.model_validate({**data, "path": path, "base_dir": path.parent})
    except ValidationError as exc:
        issues.extend(pydantic_issues(exc, label, model=Config))
        raise ConfigError(issues) from None
    if issues:
        raise ConfigError(issues)
    return config


def expand_env(value: Any, file: str, issues: list[ConfigIssue], key: str = "") -> Any:
    """Replace ``${VAR}`` in every string of a TOML tree; a missing variable becomes an issue."""
    if isinstance(value, dict):
        return {k: expand_env(v, file, issues, f"{key}.{k}" if key else k) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, file, issues, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                issues.append(ConfigIssue(file, key, f"environment variable {name} is not set"))
                return ""
            return os.environ[name]
        return ENV_REF.sub(sub, value)
    return value


def settings_or_raise(checked: tuple[list[ConfigIssue], Any]) -> Any:
    """The settings of a ``(issues, settings)`` check of one table, or ``ConfigError`` naming every issue."""
    issues, settings = checked
    if issues or settings is None:
        raise ConfigError(issues)
    return settings


def pydantic_issues(exc: ValidationError, file: str, *, prefix: str = "",
                    model: type[BaseModel] | None = None) -> list[ConfigIssue]:
    """Turn a pydantic ``ValidationError`` into ``file: key: message`` issues with did-you-mean hints.

    Input values are never echoed (they may be secrets).
    """
    issues = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = [str(p) for p in err["loc"]]
        key = ".".join(filter(None, [prefix, *loc]))
        if err["type"] == "extra_forbidden":
            fields = _fields_at(model, loc[:-1]) if model else []
            message = f"unknown key '{loc[-1]}'{did_you_mean(loc[-1], fields)}"
            if fields:
                message += " known: " + ", ".join(sorted(fields))
        elif err["type"] == "missing":
            message = "required key is missing"
        else:
            message = err["msg"].removeprefix("Value error, ")
        issues.append(ConfigIssue(file, key, message))
    return issues


def _fields_at(model: type[BaseModel] | None, loc: list[str]) -> list[str]:
    """Field names of the (nested) model reached by following ``loc`` (dict keys and indices skipped)."""
    for part in loc:
        if model is not None and part in model.model_fields:
            model = _model_of(model.model_fields[part].annotation)
    return _fields_of(model) if model is not None else []


def _fields_of(model: type[BaseModel]) -> list[str]:
    return [n for n in model.model_fields if n not in ("path", "base_dir")]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
