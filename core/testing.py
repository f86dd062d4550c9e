"""The kit for connector authors: pytest fixtures and a conformance suite any connector subclasses.

Installed with storesync as a pytest plugin (entry point ``pytest11``: ``storesync = storesync.core.testing``), so
a plugin package's tests get these fixtures without a conftest:

- ``storesync_plugin_host(plugins)``: a loaded plugin host (every installed plugin, plus the local modules the
  configuration names) built from plugins.toml text or a dict of its tables;
- ``storesync_store``: a temporary SQLite store;
- ``storesync_emulator(emulator)``: starts any ``LoopbackEmulator`` and stops it when the test ends.

And the conformance suite: subclass :class:`ConnectorConformance` in a ``test_*.py`` file::

    class TestLoyverseConformance(ConnectorConformance):
        connector_type = "loyverse"

        def emulator(self):                       # a fresh, small, seeded emulator (not started)
            return LoyverseEmulator(items=9, seed=1, token="tok")

        def settings(self, emulator):             # the [connectors.<id>] table pointing at it (small pages)
            return {"access_token": "tok", "base_url": f"{emulator.base_url}/v1.0", "page_size": 4}

        def expected_counts(self, emulator):      # records the emulator holds, per stream
            return {"items": len(emulator.items), ...}

(``examples/loyverse/tests/test_loyverse_conformance.py`` is the whole of it; ``docs/writing-a-connector.md``
explains each hook.)

The suite runs the real sync engine (``SyncEngine``) into a temporary SQLite store, and checks that settings
validate (and bad ones fail naming the key), ``check()`` passes, every stream reads and maps with zero quarantine,
an incremental read right after a full one inserts and updates nothing, pagination is complete, 429 and 5xx
answers are retried, and each write capability the connector declares is idempotent. A check that does not apply
(a connector without streams has nothing to page) skips with the reason.

Faults are injected in front of the emulator's own request handler (:func:`inject_faults`), so any
``LoopbackEmulator`` gets them, deterministically: every ``every``-th request answers the status instead, up to
``limit`` times, with ``Retry-After: 0`` so the suite stays fast.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest

from .capabilities import OutboundMessage, StockUpdate
from .config import Config, expand_env, load_config
from .connector import Connector
from .emulation import LoopbackEmulator
from .engine import SyncEngine
from .errors import ConfigError, ConfigIssue
from .models import Order
from .plugins import PluginHost, build_plugin_host
from .report import RunReport, StreamReport
from .store import Store

__all__ = [
    "ConnectorConformance",
    "FaultPlan",
    "build_config",
    "inject_faults",
    "storesync_emulator",
    "storesync_plugin_host",
    "storesync_store",
]


# -- building blocks ------------------------------------------------------------------------------------------

def build_config(plugins: str | dict[str, Any], base_dir: Path) -> Config:
    """A validated configuration from plugins.toml text or a dict of its tables, as if the file lived in
    ``base_dir`` (relative paths and SQLite URLs resolve there; ``${VAR}`` references are expanded)."""
    path = base_dir / "plugins.toml"
    if isinstance(plugins, str):
        path.write_text(plugins, encoding="utf-8")
        return load_config(path)
    issues: list[ConfigIssue] = []
    data = expand_env(plugins, str(path), issues)
    if issues:
        raise ConfigError(issues)
    return Config.model_validate({**data, "path": path, "base_dir": base_dir})


class FaultPlan:
    """Every ``every``-th request is answered ``status`` instead of reaching the emulator, ``limit`` times.

    ``served`` counts the faults answered, ``seen`` every request; a test asserts ``served == limit`` to know the
    connector really met (and survived) them.
    """

    def __init__(self, status: int, *, every: int = 3, limit: int = 3, retry_after: str | None = "0") -> None:
        if every < 1 or limit < 0:
            raise ValueError("every must be >= 1 and limit >= 0")
        self.status, self.every, self.limit, self.retry_after = status, every, limit, retry_after
        self.seen = self.served = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Count one request; True when it is to be answered with the fault."""
        with self._lock:
            self.seen += 1
            if self.served < self.limit and self.seen % self.every == 0:
                self.served += 1
                return True
            return False

    def body(self) -> bytes:
        code = "RATE_LIMITED" if self.status == 429 else "SERVICE_UNAVAILABLE"
        return orjson.dumps({"errors": [{"code": code, "detail": "fault injected by storesync.core.testing"}]})


def inject_faults(emulator: LoopbackEmulator, plan: FaultPlan) -> FaultPlan:
    """Answer requests to ``emulator`` by ``plan`` before its own handler sees them.

    Call it before ``start()``; on a running emulator it applies to connections opened afterwards. The request
    body is read whole, so kept-alive connections stay in step.
    """
    base = emulator.handler_class

    def wrap(name: str) -> Callable[[Any], None]:
        original = getattr(base, name)

        def handle(handler: Any) -> None:
            if not plan.take():
                original(handler)
                return
            length = int(handler.headers.get("Content-Length") or 0)
            if length:
                handler.rfile.read(length)
            body = plan.body()
            handler.send_response(plan.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            if plan.retry_after is not None:
                handler.send_header("Retry-After", plan.retry_after)
            handler.end_headers()
            handler.wfile.write(body)
        return handle

    methods = {n: wrap(n) for n in ("do_GET", "do_POST", "do_PUT", "do_PATCH", "do_DELETE") if hasattr(base, n)}
    faulty = type(f"Faulty{base.__name__}", (base,), methods)
    emulator.handler_class = faulty  # type: ignore[misc]  (an instance attribute: start() reads it)
    server = getattr(emulator, "_server", None)
    if server is not None:
        server.RequestHandlerClass = faulty
    return plan


# -- fixtures -------------------------------------------------------------------------------------------------

@pytest.fixture
def storesync_plugin_host(tmp_path: Path) -> Callable[[str | dict[str, Any]], PluginHost]:
    """``make(plugins)``: a plugin host from plugins.toml text or a dict, its files in ``tmp_path``."""
    def make(plugins: str | dict[str, Any]) -> PluginHost:
        return build_plugin_host(build_config(plugins, tmp_path))
    return make


@pytest.fixture
def storesync_store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store in ``tmp_path``, disposed of afterwards."""
    store = Store(f"sqlite:///{tmp_path / 'storesync-test.db'}")
    try:
        yield store
    finally:
        store.engine.dispose()


@pytest.fixture
def storesync_emulator() -> Iterator[Callable[[LoopbackEmulator], Any]]:
    """``run(emulator)``: starts the emulator and returns it; every one started is stopped after the test."""
    started: list[LoopbackEmulator] = []

    def run(emulator: LoopbackEmulator) -> Any:
        emulator.start()
        started.append(emulator)
        return emulator
    yield run
    for emulator in reversed(started):
        emulator.stop()


# -- the conformance suite ------------------------------------------------------------------------------------

class ConnectorConformance:
    """The checks every connector passes; subclass it as ``Test<Name>Conformance`` and fill in the hooks.

    Required: ``connector_type``, ``emulator()`` and ``settings(emulator)``. Optional: ``expected_counts`` (for
    the pagination check), ``mapping`` (a mapping file; default: the type's own), and for each write
    capability the connector declares a sample (``sample_stock_update``, ``sample_order``, ``sample_message``)
    plus ``push_state`` (what the emulator holds that the write changes).
    """

    connector_type: ClassVar[str]
    connector_id: ClassVar[str] = "conformance"
    #: a mapping TOML file for the instance; ``None``: the connector type's default mapping
    mapping: ClassVar[str | None] = None
    #: faults injected per retry check, one every ``fault_every`` requests
    fault_limit: ClassVar[int] = 2
    fault_every: ClassVar[int] = 3

    # -- hooks a subclass fills in ----------------------------------------------------------------------

    def emulator(self) -> LoopbackEmulator:
        """A new emulator, not started, small and seeded (each check starts its own)."""
        raise NotImplementedError(f"{type(self).__name__} must define emulator()")

    def settings(self, emulator: Any) -> dict[str, Any]:
        """The connector's settings pointing at the running ``emulator``, with small page sizes."""
        raise NotImplementedError(f"{type(self).__name__} must define settings(emulator)")

    def expected_counts(self, emulator: Any) -> dict[str, int]:
        """Records the emulator holds, per stream name (streams left out are not checked for completeness)."""
        return {}

    def sample_stock_update(self, emulator: Any) -> StockUpdate | None:
        """A stock update the emulator can apply (for connectors with ``push_inventory``)."""
        return None

    def sample_order(self, emulator: Any) -> Order | None:
        """A canonical order the emulator can take (for connectors with ``create_order``)."""
        return None

    def sample_message(self, emulator: Any) -> OutboundMessage | None:
        """A message the emulator can take (for connectors with ``send_message``)."""
        return None

    def push_state(self, emulator: Any, capability: str) -> Any:
        """What the emulator holds that ``capability`` changes (compared before, after one and after two calls)."""
        raise NotImplementedError(f"{type(self).__name__} must define push_state(emulator, capability) to check "
                                  f"that {capability} is idempotent")

    # -- helpers --------------------------------------------------------------------------------------------

    @pytest.fixture
    def running(self) -> Iterator[Any]:
        """This class's emulator, started for one check."""
        with self.emulator() as emulator:
            yield emulator

    def config(self, emulator: Any, base_dir: Path, **overrides: Any) -> Config:
        section = {"type": self.connector_type, **self.settings(emulator), **overrides}
        if self.mapping:
            section["mapping"] = str(Path(self.mapping).resolve())
        return build_config({"storesync": {"database": "sqlite:///conformance.db", "workers": 0},
                             "connectors": {self.connector_id: section}}, base_dir)

    def connector(self, emulator: Any, base_dir: Path) -> Connector:
        return build_plugin_host(self.config(emulator, base_dir)).connector(self.connector_id)

    def sync(self, emulator: Any, base_dir: Path) -> RunReport:
        """One sync of the instance through the real engine into the store in ``base_dir``."""
        config = self.config(emulator, base_dir)
        host = build_plugin_host(config)
        store = Store(config.database_url())
        try:
            (report,) = SyncEngine(host, store).sync([self.connector_id])
        finally:
            store.engine.dispose()
        return report

    def _streams(self, emulator: Any, base_dir: Path) -> dict[str, StreamReport]:
        report = self.sync(emulator, base_dir)
        assert report.status == "ok", f"sync ended {report.status}: {report.error or report.as_dict()}"
        return {s.stream: s for s in report.streams}

    def _need_streams(self, emulator: Any, base_dir: Path) -> None:
        if not self.connector(emulator, base_dir).streams():
            pytest.skip(f"connector type {self.connector_type!r} has no streams: nothing to read")

    # -- the checks -----------------------------------------------------------------------------------------

    def test_settings_validate(self, running: Any, tmp_path: Path) -> None:
        connector = self.connector(running, tmp_path)
        assert connector.name == self.connector_type
        assert isinstance(connector.settings, type(connector).Settings)

    def test_bad_settings_name_the_key(self, running: Any, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as caught:
            self.connector_with(running, tmp_path, no_such_setting=1)
        assert f"connectors.{self.connector_id}.no_such_setting" in str(caught.value)
        assert "unknown key" in str(caught.value)
        settings_model = build_plugin_host(self.config(running, tmp_path)).connector_class(
            self.connector_type).Settings
        required = [n for n, f in settings_model.model_fields.items() if f.is_required()]
        if not required:
            return
        config = self.config(running, tmp_path)
        config.connectors[self.connector_id].model_extra.pop(required[0], None)  # type: ignore[union-attr]
        with pytest.raises(ConfigError) as missing:
            build_plugin_host(config).connector(self.connector_id)
        assert f"connectors.{self.connector_id}.{required[0]}" in str(missing.value)
        assert "required key is missing" in str(missing.value)

    def connector_with(self, emulator: Any, base_dir: Path, **overrides: Any) -> Connector:
        return build_plugin_host(self.config(emulator, base_dir, **overrides)).connector(self.connector_id)

    def test_check_passes(self, running: Any, tmp_path: Path) -> None:
        described = self.connector(running, tmp_path).check()
        assert isinstance(described, str) and described.strip()

    def test_every_stream_reads_and_maps_without_quarantine(self, running: Any, tmp_path: Path) -> None:
        self._need_streams(running, tmp_path)
        got = self._streams(running, tmp_path)
        mapped = set(build_plugin_host(self.config(running, tmp_path)).mapping(self.connector_id).streams)
        names = [s.name for s in self.connector(running, tmp_path).streams() if s.name in mapped]
        assert names, "the mapping maps none of the connector's streams"
        for name in names:
            rep = got[name]
            assert rep.error is None, f"{name}: {rep.error}"
            assert rep.read > 0, f"{name}: read nothing from the emulator"
            assert (rep.quarantined, rep.vetoed) == (0, 0), f"{name}: {rep}"
            assert rep.inserted > 0, f"{name}: nothing stored"

    def test_incremental_read_after_full_read_changes_nothing(self, running: Any, tmp_path: Path) -> None:
        self._need_streams(running, tmp_path)
        self._streams(running, tmp_path)
        again = self._streams(running, tmp_path)
        changed = {n: (r.inserted, r.updated) for n, r in again.items() if r.inserted or r.updated}
        assert not changed, f"an incremental read right after a full one stored changes: {changed}"

    def test_pagination_is_complete(self, running: Any, tmp_path: Path) -> None:
        self._need_streams(running, tmp_path)
        expected = self.expected_counts(running)
        if not expected:
            pytest.skip(f"{type(self).__name__} gives no expected_counts(emulator)")
        got = self._streams(running, tmp_path)
        wrong = {n: (got[n].inserted, want) for n, want in expected.items() if got[n].inserted != want}
        assert not wrong, f"records stored vs records the emulator holds: {wrong}"

    @pytest.mark.parametrize("status", [429, 503])
    def test_transient_errors_are_retried(self, status: int, tmp_path: Path) -> None:
        emulator = self.emulator()
        plan = inject_faults(emulator, FaultPlan(status, every=self.fault_every, limit=self.fault_limit))
        with emulator:
            if not self.connector(emulator, tmp_path).streams():  # a sender: its check() meets the fault
                plan.every = 1
                assert self.connector(emulator, tmp_path).check()
            else:
                got = self._streams(emulator, tmp_path)
                wrong = {n: (got[n].inserted, want) for n, want in self.expected_counts(emulator).items()
                         if got[n].inserted != want}
                assert not wrong, f"after retried HTTP {status}s, stored vs held: {wrong}"
        assert plan.served == plan.limit, f"only {plan.served} of {plan.limit} HTTP {status} faults were met"

    def test_push_inventory_is_idempotent(self, running: Any, tmp_path: Path) -> None:
        connector = self._capable(running, tmp_path, "push_inventory")
        update = self.sample_stock_update(running)
        if update is None:
            pytest.skip(f"{type(self).__name__} gives no sample_stock_update(emulator)")
        self._twice(running, "push_inventory",
                    lambda: [o.status for o in connector.push_inventory([update])], expect=["applied"])

    def test_create_order_is_idempotent(self, running: Any, tmp_path: Path) -> None:
        connector = self._capable(running, tmp_path, "create_order")
        order = self.sample_order(running)
        if order is None:
            pytest.skip(f"{type(self).__name__} gives no sample_order(emulator)")
        receipts = self._twice(running, "create_order", lambda: connector.create_order(order))
        assert receipts[0].external_id == receipts[1].external_id
        assert (receipts[0].created, receipts[1].created) == (True, False)

    def test_send_message_is_idempotent(self, running: Any, tmp_path: Path) -> None:
        """A gateway without idempotency keys offers ``find_message``: the retry the outbox makes after a lost
        answer looks the message up first, and must find the first send instead of sending again."""
        connector = self._capable(running, tmp_path, "send_message")
        message = self.sample_message(running)
        if message is None:
            pytest.skip(f"{type(self).__name__} gives no sample_message(emulator)")
        since = datetime.now(UTC) - timedelta(seconds=5)

        def send() -> str | None:
            if callable(getattr(connector, "find_message", None)):
                found = connector.find_message(message, since, set())  # type: ignore[attr-defined]
                if found is not None:
                    return found.provider_id
            return connector.send_message(message).provider_id  # type: ignore[attr-defined]
        ids = self._twice(running, "send_message", send)
        assert ids[0] and ids[0] == ids[1], f"the retried send has another id: {ids}"

    def _capable(self, emulator: Any, base_dir: Path, capability: str) -> Connector:
        connector = self.connector(emulator, base_dir)
        if capability not in type(connector).capabilities():
            pytest.skip(f"connector type {self.connector_type!r} does not declare {capability}")
        return connector

    def _twice(self, emulator: Any, capability: str, call: Callable[[], Any], expect: Any = None) -> list[Any]:
        before = self.push_state(emulator, capability)
        first = call()
        after_one = self.push_state(emulator, capability)
        second = call()
        after_two = self.push_state(emulator, capability)
        if expect is not None:
            assert [first, second] == [expect, expect], f"{capability} answered {first}, then {second}"
        assert after_one != before, f"{capability} changed nothing in the emulator: {before!r}"
        assert after_two == after_one, f"{capability} twice changed the emulator twice: {after_one!r} -> {after_two!r}"
        return [first, second]

