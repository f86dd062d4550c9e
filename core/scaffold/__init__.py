"""``storesync connector new NAME``: writes a connector plugin package from the templates beside this module.

The templates (``template/**/*.tmpl``) are plain files with ``{{name}}`` (the connector type, e.g. ``acme_pos``),
``{{Name}}`` (``AcmePos``), ``{{NAME}}`` (``ACME_POS``), ``{{package}}`` (``storesync_acme_pos``) and ``{{dist}}``
(``storesync-acme-pos``) placeholders; ``__package__`` and ``__name__`` in a template's path become the package
and the type name. They are files rather than strings in code so they read, and diff, as the package they become.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

__all__ = ["Scaffold", "TEMPLATE_DIR", "create", "placeholders"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "template"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class Scaffold:
    """What ``create`` wrote: the package folder and its files (relative paths)."""

    name: str
    path: Path
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"connector_type": self.name, "path": str(self.path), "files": self.files}


def placeholders(name: str) -> dict[str, str]:
    """The values the templates' placeholders take for connector type ``name``."""
    return {"{{name}}": name, "{{Name}}": "".join(p.capitalize() for p in name.split("_") if p),
            "{{NAME}}": name.upper(), "{{package}}": f"storesync_{name}", "{{dist}}": f"storesync-{name.replace('_', '-')}"}


def create(name: str, parent: Path, *, taken: set[str] | frozenset[str] = frozenset()) -> Scaffold:
    """Write the package for connector type ``name`` into ``parent/name``; ``taken`` are types already installed.

    Raises ``ConfigError`` (exit 2) for a name that is not a valid type name, one an installed plugin already
    registers, or a target folder that exists and is not empty (nothing is overwritten).
    """
    if not NAME.match(name):
        raise ConfigError(f"connector name {name!r} must start with a lower-case letter and hold only lower-case "
                          "letters, digits and '_' (it becomes the `type` in plugins.toml)", key="NAME")
    if name in taken:
        raise ConfigError(f"connector type {name!r} is already registered by an installed plugin",
                          hint="pick another name; `storesync plugins list` shows the taken ones", key="NAME")
    target = parent / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} already exists and is not empty; nothing was written",
                          hint="pass another --dir, or remove the folder", key="--dir")
    values = placeholders(name)
    result = Scaffold(name=name, path=target.resolve())
    for template in sorted(TEMPLATE_DIR.rglob("*.tmpl")):
        relative = template.relative_to(TEMPLATE_DIR).as_posix().removesuffix(".tmpl")
        relative = relative.replace("__package__", values["{{package}}"]).replace("__name__", name)
        text = template.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(key, value)
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        result.files.append(relative)
    return result
