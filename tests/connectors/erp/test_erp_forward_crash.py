"""kill -9 of ``storesync orders forward`` after Odoo created a sale order but before storesync committed it:
the rerun finds the order by its reference (``client_order_ref``) and does not create it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))

from e2e_support import rows, shopify_order  # noqa: E402
from erp_support import KEY, erp_id, project, run, streams, write_orders  # noqa: E402

from storesync.connectors.erp.emulator import OdooEmulator  # noqa: E402


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_kill_between_create_and_commit_does_not_create_twice(cli, store_url: str, tmp_path: Path) -> None:
    cid, shop = erp_id(), f"shop_{uuid.uuid4().hex[:8]}"
    with OdooEmulator(api_key=KEY, orders=2) as odoo:
        project(tmp_path, store_url, cid, odoo, shop=shop)
        write_orders(tmp_path, range(1, 4))
        run(cli, tmp_path, "sync", "--no-progress", shop)  # the shop's orders are stored; no forwarding yet
        odoo.write_delays["sale.order.create"] = 30.0  # Odoo has created it; the reply is not back yet
        env = {**{k: v for k, v in os.environ.items() if k != "STORESYNC_CONFIG"}, "ODOO_API_KEY": KEY}
        child = subprocess.Popen([sys.executable, "-m", "storesync.cli", "orders", "forward", cid, "--json"],
                                 cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: any(w.path == "sale.order.create" for w in odoo.writes))
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
            child.communicate()
        assert child.returncode == -signal.SIGKILL
        first_ref = f"{shop}:{shopify_order(1)['id']}"
        assert len(odoo.sale_orders(client_order_ref=first_ref)) == 1
        assert rows(store_url, "SELECT state FROM forwarded_order WHERE connector_id = :c", c=cid) == [("pending",)]

        odoo.write_delays.clear()
        (report,) = run(cli, tmp_path, "orders", "forward", cid)
        again = streams(report)[f"orders<-{shop}"]
        assert (again["read"], again["unchanged"], again["inserted"]) == (3, 1, 2), again
        (report,) = run(cli, tmp_path, "orders", "forward", cid)
        assert streams(report)[f"orders<-{shop}"]["read"] == 0
        for i in range(1, 4):
            (order,) = odoo.sale_orders(client_order_ref=f"{shop}:{shopify_order(i)['id']}")
            assert order["state"] == "sale"  # the order caught mid-create was confirmed by the rerun
        creates = sum(1 for w in odoo.writes if w.path == "sale.order.create")
    assert creates == 3
    states = rows(store_url, "SELECT source_external_id, state, attempts FROM forwarded_order WHERE connector_id = :c "
                             "ORDER BY source_external_id", c=cid)
    assert states == sorted([(str(shopify_order(1)["id"]), "found", 2), (str(shopify_order(2)["id"]), "created", 1),
                             (str(shopify_order(3)["id"]), "created", 1)])
