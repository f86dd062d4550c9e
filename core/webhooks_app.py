"""``storesync serve``: the ASGI app (Starlette) that receives Shopify, Square and Twilio webhooks.

Routes:

- ``POST /webhooks/<connector_id>``: one per configured connector of a type that sends webhooks. The raw body's
  signature is checked with that connector's secret (constant time, in the connector's ``webhooks.py``); a bad or
  missing one is a 401 and nothing is stored. A verified delivery is committed to the queue
  (``core/webhook_queue.py``) and only then answered 200; a repeat of a queued delivery id is answered 200 without
  a second row. Nothing heavier happens in the request: the worker thread (``core/webhook_worker.py``) applies the
  queue, so the answer comes well within Shopify's 5 s and Square's 10 s.
- ``GET /healthz``: 200 while the store answers and the worker runs, else 503.
- ``GET /metrics``: Prometheus text; ``?format=json`` for JSON.

Signatures that cover the URL (Square, Twilio) need the URL the provider called. Behind a proxy that is not the
URL this process sees: give ``public_url`` (``https://hooks.example.com``) and the path is joined to it; Square's
``notification_url`` setting wins for its connector.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .errors import ConfigError, ConfigIssue
from .webhook_metrics import Metrics
from .webhook_providers import PROVIDERS, Provider
from .webhook_queue import depth, enqueue
from .webhook_worker import DeliveryWorker

__all__ = ["MAX_BODY", "Endpoint", "create_app", "endpoints"]

log = logging.getLogger("storesync.serve")
MAX_BODY = 5 * 1024 * 1024  # Shopify's largest order bodies are well under 1 MiB
TWIML_EMPTY = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@dataclass
class Endpoint:
    """A connector that receives webhooks: its provider, and whether it has the secret to check them."""

    connector_id: str
    provider: Provider
    connector: Any
    ready: bool

    @property
    def path(self) -> str:
        return f"/webhooks/{self.connector_id}"


def endpoints(session: Any) -> dict[str, Endpoint]:
    """Every enabled connector whose type sends webhooks; ``ready`` is False where its secret is missing."""
    out = {}
    for cid in session.host.enabled_connectors():
        provider = PROVIDERS.get(session.config.connectors[cid].type)
        if provider is None:
            continue
        connector = session.host.connector(cid)
        out[cid] = Endpoint(cid, provider, connector, bool(provider.secret(connector)))
    return out


def create_app(session: Any, *, public_url: str | None = None, worker: DeliveryWorker | None = None,
               metrics: Metrics | None = None) -> Starlette:
    """The app for ``session``'s configuration; ``worker`` (started and stopped with the app) applies the queue.

    Raises ``ConfigError`` when no connector can receive webhooks (none of a webhook type, or none with a secret).
    """
    served = endpoints(session)
    if not any(e.ready for e in served.values()):
        issues = [ConfigIssue(session.config.file_label, f"connectors.{e.connector_id}",
                              f"cannot verify {e.provider.type_name} webhooks: {e.provider.hint()}")
                  for e in served.values()]
        raise ConfigError(issues or [ConfigIssue(session.config.file_label, "connectors",
                                                 "no shopify, square or twilio connector is configured: "
                                                 "storesync serve has nothing to receive")])
    metrics = metrics or (worker.metrics if worker is not None else Metrics())
    store = session.store
    write_lock = worker.write_lock if worker is not None else contextlib.nullcontext()
    base = public_url.rstrip("/") if public_url else None

    async def receive(request: Request) -> Response:
        cid = request.path_params["connector_id"]
        metrics.add("received")
        endpoint = served.get(cid)
        if endpoint is None:
            metrics.add("rejected")
            log.warning("POST %s: no webhook connector %r", request.url.path, cid)
            return JSONResponse({"error": f"no webhook endpoint for connector {cid!r}"}, status_code=404)
        if not endpoint.ready:  # 503: the provider retries, so nothing is lost once the secret is configured
            metrics.add("rejected")
            log.warning("%s: webhook refused: no secret to verify it (%s)", cid, endpoint.provider.hint())
            return JSONResponse({"error": "webhook secret not configured"}, status_code=503)
        body = await request.body()
        if len(body) > MAX_BODY:
            metrics.add("rejected")
            return JSONResponse({"error": "body too large"}, status_code=413)
        headers = {k.lower(): v for k, v in request.headers.items()}
        url = _public(base, request)
        if not endpoint.provider.verify(endpoint.connector, url, headers, body):
            metrics.add("rejected")
            log.warning("%s: webhook rejected: bad or missing signature (from %s)", cid,
                        request.client.host if request.client else "?")
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        received = endpoint.provider.describe(headers, body)
        row = await run_in_threadpool(_locked, write_lock, enqueue, store, cid, received.delivery_id,
                                      received.topic, received.headers, body)
        if row is None:
            metrics.add("duplicates")
            log.info("%s %s delivery %s: duplicate, already queued", cid, received.topic, received.delivery_id)
        else:
            metrics.add("queued")
            log.info("%s %s delivery %s: queued as #%d", cid, received.topic, received.delivery_id, row)
            if worker is not None:
                worker.wake()
        if endpoint.provider.media_type == "text/xml":
            return Response(TWIML_EMPTY, media_type="text/xml")
        return JSONResponse({"queued": row, "duplicate": row is None})

    async def healthz(request: Request) -> Response:
        try:
            queued = await run_in_threadpool(depth, store)
        except Exception as exc:  # the store is down
            return JSONResponse({"status": "error", "store": f"{type(exc).__name__}"}, status_code=503)
        worker_ok = worker is None or worker.alive
        return JSONResponse({"status": "ok" if worker_ok else "worker stopped", "queue_depth": queued,
                             "worker": worker_ok,
                             "endpoints": {cid: {"type": e.provider.type_name, "path": e.path, "ready": e.ready}
                                           for cid, e in served.items()}},
                            status_code=200 if worker_ok else 503)

    async def metrics_view(request: Request) -> Response:
        queued = await run_in_threadpool(depth, store)
        if request.query_params.get("format") == "json":
            return JSONResponse(metrics.snapshot(queued))
        return PlainTextResponse(metrics.prometheus(queued), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for e in served.values():
            log.info("listening for %s webhooks of %r on %s%s", e.provider.type_name, e.connector_id, e.path,
                     "" if e.ready else f" (refused until you {e.provider.hint()})")
        if worker is not None:
            worker.start()  # first applies what an earlier process left queued
        try:
            yield
        finally:
            if worker is not None:
                await run_in_threadpool(worker.stop)

    return Starlette(routes=[Route("/webhooks/{connector_id}", receive, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"]),
                             Route("/metrics", metrics_view, methods=["GET"])], lifespan=lifespan)


def _locked(lock: Any, fn: Any, *args: Any) -> Any:
    with lock:
        return fn(*args)


def _public(base: str | None, request: Request) -> str:
    """The URL the provider called: ``base`` + path + query behind a proxy, else the URL as received."""
    if base is None:
        return str(request.url)
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")
