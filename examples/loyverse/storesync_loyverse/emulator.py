"""A local fake of the `loyverse` API for tests: the two resources, bearer auth, cursor paging, API-style errors.

Run `python -m storesync_loyverse.emulator` (prints its URL, token and a plugins.toml table), or in tests::

    with LoyverseEmulator(customers=20, seed=1, token="tok") as api:
        httpx.get(f"{api.base_url}/v1/customers", headers={"Authorization": "Bearer tok"})

Make it answer as the real API does: the paths, the paging, the error bodies. Faults (429, 5xx) are injected in
front of it by storesync's test kit (`storesync.core.testing.inject_faults`).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from storesync.core.emulation import LoopbackEmulator

__all__ = ["LoyverseEmulator", "main"]

MAX_LIMIT = 250
FIRST_NAMES = ["Mei Ling", "Ka Wai", "Siu Ming", "Wing Yan", "Chi Keung", "Hoi Yan", "Tsz Ho", "Ying"]
LAST_NAMES = ["Chan", "Wong", "Lee", "Cheung", "Lau", "Ho", "Ng", "Leung"]
GOODS = ["Jasmine tea", "Egg roll tin", "Mooncake box", "Porcelain cup", "Almond biscuits", "Chilli oil"]


class ApiError(Exception):
    """An answer other than 200: the status and the body the API sends with it."""

    def __init__(self, status: int, code: str, details: str) -> None:
        super().__init__(details)
        self.status, self.body = status, {"errors": [{"code": code, "details": details}]}


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LoyverseEmulator(LoopbackEmulator):
    """Seeded records plus an HTTP server on 127.0.0.1; use as a context manager or `start()`/`stop()`."""

    thread_name = "loyverse-emulator"

    def __init__(self, *, customers: int = 25, products: int = 12, seed: int = 0,
                 token: str = "loyverse_emulator_token", port: int = 0) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.records: dict[str, dict[str, dict]] = {"customers": {}, "products": {}}
        self._clock = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        rng = random.Random(seed)
        for n in range(1, customers + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            self._put("customers", {"id": f"c{n:05d}", "name": f"{first} {last}",
                                    "email": f"{first.split()[0].lower()}.{last.lower()}{n}@example.com.hk",
                                    "phone": f"+852 9{rng.randrange(10**6, 10**7):07d}", "note": None})
        for n in range(1, products + 1):
            pid = f"p{n:05d}"
            variants = [{"id": f"{pid}-{k}", "product_id": pid, "sku": f"LOYVERSE-{n:04d}-{k}",
                         "title": f"size {k}", "price": f"{rng.randrange(10, 400)}.{rng.choice(['00', '50'])}"}
                        for k in range(1, rng.randint(1, 3) + 1)]
            self._put("products", {"id": pid, "title": f"{rng.choice(GOODS)} {n}", "variants": variants})
        self._init_server(port)

    # -- test hooks: change data as the real system would (a fresh updated_at), never faulted
    def touch(self, resource: str, record_id: str, **changes: Any) -> dict:
        """Change a record now (its `updated_at` moves past every other); returns it."""
        with self.lock:
            record = {**self.records[resource][record_id], **changes}
            return self._put(resource, record)

    def _put(self, resource: str, record: dict) -> dict:
        self._clock += timedelta(seconds=7)
        record.setdefault("created_at", stamp(self._clock))
        record["updated_at"] = stamp(self._clock)
        self.records[resource][record["id"]] = record
        return record

    # -- the API
    def handle(self, method: str, raw_path: str, headers: Any) -> tuple[int, dict]:
        """(status, body) for one request."""
        split = urlsplit(raw_path)
        self.requests[split.path] += 1
        try:
            if headers.get("Authorization") != f"Bearer {self.token}":
                raise ApiError(401, "UNAUTHORIZED", "The access token is missing or invalid.")
            params = dict(parse_qsl(split.query))
            if method == "GET" and split.path == "/v1/account":
                return 200, {"name": "Loyverse emulated merchant"}
            resource = split.path.removeprefix("/v1/")
            if method == "GET" and resource in self.records:
                return 200, self._list(resource, params)
            raise ApiError(404, "NOT_FOUND", f"{method} {split.path} is not an endpoint of this API.")
        except ApiError as exc:
            return exc.status, exc.body

    def _list(self, resource: str, params: dict[str, str]) -> dict:
        """One page, oldest change first; `cursor` names where the next page starts and carries the filter."""
        try:
            limit = int(params.get("limit", 50))
        except ValueError:
            raise ApiError(400, "INVALID_VALUE", "limit must be a whole number") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(400, "INVALID_VALUE", f"limit must be between 1 and {MAX_LIMIT}")
        after: list[str] | None = None
        since = params.get("updated_at_min")
        if "cursor" in params:
            try:
                state = json.loads(base64.urlsafe_b64decode(params["cursor"].encode()))
                since, after = state["since"], state["after"]
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "INVALID_CURSOR", "The cursor is not valid.") from None
        with self.lock:
            rows = sorted(self.records[resource].values(), key=lambda r: (r["updated_at"], r["id"]))
        rows = [r for r in rows if (since is None or r["updated_at"] >= since)
                and (after is None or [r["updated_at"], r["id"]] > after)]
        page, more = rows[:limit], len(rows) > limit
        body: dict[str, Any] = {resource: page}
        if more:
            edge = [page[-1]["updated_at"], page[-1]["id"]]
            body["cursor"] = base64.urlsafe_b64encode(json.dumps({"since": since, "after": edge}).encode()).decode()
        return body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.emulator._connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.server.emulator._connections.discard(self.connection)  # type: ignore[attr-defined]
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, payload = self.server.emulator.handle(self.command, self.path, self.headers)  # type: ignore
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


LoyverseEmulator.handler_class = _Handler  # defined after the emulator it serves


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m storesync_loyverse.emulator",
                                     description="Serve a fake loyverse API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--customers", type=int, default=25)
    parser.add_argument("--products", type=int, default=12)
    parser.add_argument("--token", default="loyverse_emulator_token")
    args = parser.parse_args(argv)
    api = LoyverseEmulator(customers=args.customers, products=args.products, token=args.token, port=args.port)
    api.serve_until_interrupted(lambda e: (
        f"loyverse emulator: {e.base_url}  token: {e.token}  (Ctrl-C to stop)\n\n"
        f"export LOYVERSE_TOKEN={e.token}\n\n# plugins.toml\n[connectors.loyverse]\ntype = \"loyverse\"\n"
        f"base_url = \"{e.base_url}\"\naccess_token = \"${{LOYVERSE_TOKEN}}\"\n"))


if __name__ == "__main__":
    main()
