"""``storesync serve`` and ``storesync webhooks``: real time from the command line. Thin: core does the work.

``serve`` exit codes: 0 stopped (Ctrl-C or SIGTERM; the delivery in hand is finished, the rest stays queued for
the next start); 2 invalid configuration (no connector can receive webhooks) or the address cannot be bound.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

import click

from .core.errors import ConfigError, ConfigIssue

if TYPE_CHECKING:
    from .cli import Ctx

__all__ = ["serve", "webhooks"]


def _ui() -> Any:
    """The rendering helpers of ``cli.py`` (imported when a command runs: ``cli.py`` imports this module)."""
    from . import cli

    return cli


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on (0: any free one, printed at start).")
@click.option("--public-url", metavar="URL",
              help="The URL providers call, when a proxy stands in front (Square and Twilio sign the URL), "
                   "e.g. https://hooks.example.com.")
@click.option("--no-push", is_flag=True, help="Reconcile affected SKUs but push nothing to the channels.")
@click.pass_obj
def serve(c: Ctx, host: str, port: int, public_url: str | None, no_push: bool) -> None:
    """Receive Shopify, Square and Twilio webhooks and apply them as they come.

    \b
    POST /webhooks/<connector_id>   one per shopify, square or twilio connector
    GET  /healthz                   200 while the store answers and the worker runs
    GET  /metrics                   Prometheus text (?format=json for JSON)

    Each delivery's signature is checked with the connector's secret (shopify: webhook_secret; square:
    webhook_signature_key and notification_url; twilio: auth_token); a bad one is answered 401 and nothing is
    stored. A good one is committed to the queue before the 200, then a worker thread writes its records
    through the mappings, reconciles the SKUs it touches and pushes them to every channel. Deliveries left
    queued by a stopped or killed server are applied at the next start. Each delivery is logged (topic,
    delivery id, outcome), never its body or a secret.

    \b
    Exit codes: 0 stopped (Ctrl-C or SIGTERM), 2 bad configuration or the address is in use.
    """
    import uvicorn

    from .core.webhook_worker import DeliveryWorker
    from .core.webhooks_app import create_app

    session = c.session()
    worker = DeliveryWorker(session, push=not no_push)
    app = create_app(session, public_url=public_url, worker=worker)
    bound = _free(host, port)
    _log_deliveries(c.verbose)
    _ui().err.print(f"storesync serve: listening on http://{host}:{bound} (store {session.store.display_url}); "
                    "Ctrl-C to stop", highlight=False, soft_wrap=True)
    config = uvicorn.Config(app, host=host, port=bound, log_config=None, log_level="warning", access_log=False,
                            lifespan="on", timeout_graceful_shutdown=10, backlog=2048)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again under the handlers found
    # at start: these make that a clean exit 0 instead of a death by signal or a KeyboardInterrupt traceback
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped)
    server = uvicorn.Server(config)
    try:
        server.run()  # uvicorn binds its own socket: one handed in (sockets=...) halved the requests/s here
    except SystemExit:
        if server.started:
            raise
        # the port was taken between the check and uvicorn's bind (uvicorn logged why and exits 1)
        raise ConfigError([ConfigIssue("--port", f"{host}:{bound}", "cannot listen there")]) from None
    _stopped()


def _stopped(*_signal: Any) -> None:
    logging.getLogger("storesync.serve").info("stopped; deliveries still queued are applied at the next start")
    sys.exit(0)


def _log_deliveries(verbose: int) -> None:
    """One line per delivery and per reconciled SKU on stderr, whatever -v says (-vv adds debug)."""
    log = logging.getLogger("storesync.serve")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


def _free(host: str, port: int) -> int:
    """Check that ``host:port`` can be bound (an address in use is a clear exit 2 before anything starts); the port
    to give uvicorn (port 0 picks a free one here, so the banner can name it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError([ConfigIssue("--port", f"{host}:{port}", f"cannot listen there: {exc.strerror}")]) \
                from None
        return int(sock.getsockname()[1])


@click.group()
def webhooks() -> None:
    """Subscribe providers to storesync serve, and inspect or retry received deliveries."""


@webhooks.command("register")
@click.argument("connector_id")
@click.option("--url", required=True, help="The public URL of this connector's route, "
                                           "e.g. https://hooks.example.com/webhooks/shop.")
@click.option("--topic", "topics", multiple=True, help="Only this topic (repeatable; default: those storesync uses).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def webhooks_register(c: Ctx, connector_id: str, url: str, topics: tuple[str, ...], as_json: bool) -> None:
    """Subscribe CONNECTOR_ID's topics to URL: through the API for Shopify (a second run creates nothing);
    for Square and Twilio, print what to set in their dashboards.

    \b
    Exit codes: 0 done, 2 unknown connector, topic or a type without webhooks, 3 the provider refused.
    """
    from .core.webhook_register import register

    if not url.startswith(("https://", "http://")):
        raise ConfigError([ConfigIssue("--url", url, "must be an http(s) URL ending in /webhooks/<connector_id>")])
    rows = register(c.session(), connector_id, url, list(topics) or None)
    ui = _ui()
    if as_json:
        return ui.emit_json([r.__dict__ for r in rows])
    for r in rows:
        if r.status == "manual":
            ui.out.print(f"{r.topic}: {r.detail}", highlight=False, markup=False)
        else:
            ui.out.print(f"{r.topic}: {r.status}" + (f" (id {r.id})" if r.id else ""), highlight=False)


@webhooks.command("list")
@click.option("--state", type=click.Choice(["queued", "applied", "stale", "quarantined", "skipped", "failed"]),
              help="Only deliveries in this state.")
@click.option("--connector", "connector_id", help="Only this connector's deliveries.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def webhooks_list(c: Ctx, state: str | None, connector_id: str | None, limit: int, as_json: bool) -> None:
    """List received deliveries, newest first, with their state and what applying them did (no bodies)."""
    from .core.webhook_queue import list_deliveries

    rows = list_deliveries(c.session().store, state=state, connector_id=connector_id, limit=limit)
    ui = _ui()
    if as_json:
        return ui.emit_json(rows)
    ui.table("webhook deliveries", ["id", "connector", "topic", "delivery id", "received", "state", "attempts",
                                    "error"],
             [[r["id"], r["connector_id"], r["topic"], r["delivery_id"], r["received_at"], r["state"],
               r["attempts"], r["error"]] for r in rows])


@webhooks.command("retry")
@click.option("--connector", "connector_id", help="Only this connector's deliveries.")
@click.pass_obj
def webhooks_retry(c: Ctx, connector_id: str | None) -> None:
    """Queue failed deliveries again (after fixing what failed them); a running serve applies them at once,
    else the next start does."""
    from .core.webhook_queue import requeue

    n = requeue(c.session().store, state="failed", connector_id=connector_id)
    _ui().out.print(f"{n} failed deliveries queued again", highlight=False)
