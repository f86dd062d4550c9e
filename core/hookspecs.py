"""The whole plugin contract of storesync, as pluggy hook specifications.

Hooks are grouped by lifecycle: registration (called once when the plugin manager is built), per record
(called by the engine on the hot path, skipped entirely when no plugin implements it), and notification
(domain events and end of run). Core always calls hooks with keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .connector import Connector
    from .models import Canonical, Event
    from .report import RunReport

hookspec = pluggy.HookspecMarker("storesync")
hookimpl = pluggy.HookimplMarker("storesync")

__all__ = ["hookimpl", "hookspec"]


# -- registration -------------------------------------------------------------------------------------------

@hookspec
def storesync_register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Contribute connector types.

    Called once, when the plugin manager is built. Call ``register(ConnectorClass)`` for each connector type
    the plugin provides; core validates the class and raises ``PluginError`` naming both distributions when
    two plugins register the same ``name``. Return value: ignored. Order: irrelevant.
    """


@hookspec
def storesync_register_transforms(register: Callable[..., None]) -> None:
    """Contribute named transforms usable in TOML mappings.

    Called once, when the transform registry is built. Call ``register(name, factory)`` where ``factory``
    takes ``(ctx, **params)`` and returns a one-argument callable; a name clash with a built-in or another
    plugin raises ``PluginError``. Return value: ignored. Order: irrelevant.
    """


# -- per record ---------------------------------------------------------------------------------------------

@hookspec
def storesync_record_mapped(connector: Connector, stream: str, record: Canonical) -> bool | None:
    """Enrich or veto one canonical record after mapping and validation, before it is stored.

    Called by the engine for every record, only when at least one plugin implements this hook.
    ``connector`` is the connector instance, ``stream`` the stream name, ``record`` the validated
    canonical model, which an implementation may modify in place. Return ``False`` to veto the record
    (it is skipped and counted as vetoed); ``None`` or ``True`` keeps it. All implementations run.
    """


# -- notification -------------------------------------------------------------------------------------------

@hookspec
def storesync_event(event: Event) -> None:
    """Receive a domain event (order accepted, oversell detected, pre-order stock arrived, identities merged).

    Called for every event, fanned out to every implementation. ``event.type`` names the kind; ``event.id``
    is stable, so listeners can de-duplicate. Return value: ignored.
    """


@hookspec
def storesync_sync_finished(run: RunReport) -> None:
    """Observe a finished sync run (metrics, reports).

    Called once per connector instance at the end of ``storesync sync``, after the run log is written,
    also when the run failed (``run.status`` says how it ended). Return value: ignored.
    """


def _hook_names() -> list[str]:
    """Names of every hook in this contract (used by the meta-tests)."""
    return sorted(n for n in globals() if n.startswith("storesync_"))


HOOK_NAMES: list[str] = _hook_names()
