"""``storesync webhooks register``: subscribe a provider's topics to ``storesync serve``'s URL, where an API allows.

Shopify: ``POST /admin/api/<version>/webhooks.json {"webhook": {topic, address, format: "json"}}`` per topic,
after listing the existing subscriptions so a second run creates nothing. Square and Twilio subscriptions are set
in their dashboards (Square's webhook subscriptions API needs an OAuth application, and a Twilio number's
messaging URL is part of the number's configuration): for those the steps to follow are returned as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, ConfigIssue, FatalSyncError

__all__ = ["SHOPIFY_TOPICS", "SQUARE_EVENTS", "Registration", "register"]

SHOPIFY_TOPICS = ("orders/create", "orders/updated", "inventory_levels/update", "customers/create",
                  "customers/update", "products/update")
SQUARE_EVENTS = ("order.created", "order.updated", "inventory.count.updated", "customer.created",
                 "customer.updated")


@dataclass
class Registration:
    """One topic's subscription: ``created``, ``exists`` (already there) or ``manual`` (follow ``detail``)."""

    topic: str
    status: str
    detail: str = ""
    id: Any = None


def register(session: Any, connector_id: str, url: str, topics: list[str] | None = None) -> list[Registration]:
    """Subscribe ``url`` to ``topics`` (default: the ones storesync uses) of ``connector_id``'s provider."""
    kind = session.config.connectors[connector_id].type if connector_id in session.config.connectors else None
    connector = session.host.connector(connector_id)  # an unknown id raises ConfigError naming the known ones
    if kind == "shopify":
        return _shopify(connector, url, list(topics or SHOPIFY_TOPICS))
    if kind == "square":
        events = ", ".join(topics or SQUARE_EVENTS)
        return [Registration("square", "manual",
                             f"In the Square Developer Dashboard, open your application, Webhooks, Subscriptions, "
                             f"Add subscription: URL {url}, events {events}. Then copy its signature key into "
                             f"[connectors.{connector_id}] webhook_signature_key (e.g. \"${{SQUARE_WEBHOOK_KEY}}\") "
                             f"and set notification_url = \"{url}\" (Square signs the URL with the body).")]
    if kind == "twilio":
        return [Registration("message.status", "manual",
                             f"Set status_callback = \"{url}\" in [connectors.{connector_id}]: storesync sends it "
                             f"with every message, and Twilio posts each status change there."),
                Registration("message.inbound", "manual",
                             f"In the Twilio Console, Phone Numbers, your sender number, Messaging: set \"A message "
                             f"comes in\" to Webhook {url} (HTTP POST), so STOP and START replies arrive at once.")]
    raise ConfigError([ConfigIssue(session.config.file_label, f"connectors.{connector_id}.type",
                                   f"connector type {kind!r} sends no webhooks; shopify, square and twilio do")])


def _shopify(connector: Any, url: str, topics: list[str]) -> list[Registration]:
    from ..connectors.shopify.webhooks import TOPICS

    unknown = [t for t in topics if t not in TOPICS]
    if unknown:
        raise ConfigError([ConfigIssue("--topic", unknown[0], f"storesync does not handle Shopify topic "
                                       f"{unknown[0]!r}; handled: {', '.join(TOPICS)}")])
    out = []
    with connector.client() as client:
        existing, _ = client.get("webhooks")
        subscribed = {(w.get("topic"), w.get("address")): w.get("id")
                      for w in (existing or {}).get("webhooks") or []}
        for topic in topics:
            if (topic, url) in subscribed:
                out.append(Registration(topic, "exists", id=subscribed[(topic, url)]))
                continue
            data, response = client.http.post_json(client.path("webhooks"), json={
                "webhook": {"topic": topic, "address": url, "format": "json"}})
            if response.status_code in (200, 201):
                out.append(Registration(topic, "created", id=((data or {}).get("webhook") or {}).get("id")))
            elif response.status_code == 422:  # "address for this topic has already been taken"
                out.append(Registration(topic, "exists", detail=str((data or {}).get("errors", ""))))
            else:
                raise FatalSyncError(f"shopify {connector.id!r}: POST webhooks.json ({topic}): HTTP "
                                     f"{response.status_code}: {(data or {}).get('errors', '')}",
                                     connector=connector.id,
                                     hint="the app needs the read scopes of each topic (read_orders, "
                                          "read_inventory, read_customers, read_products)")
    return out
