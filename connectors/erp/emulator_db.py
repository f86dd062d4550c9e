"""The Odoo emulator's in-memory database: records, ORM methods, write_date bookkeeping, reservations.

Errors are raised as :class:`OdooFault` carrying the Python exception name Odoo would report
(``odoo.exceptions.MissingError``, ``ValidationError``, ``AccessError``, ``UserError``, ``ValueError``...).
Every create and write stamps ``write_date`` with the clock (UTC, naive, with microseconds); confirming a
sale order reserves stock on the quants of internal locations (``reserved_quantity``), cancelling releases it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .emulator_domain import DomainError, compile_domain
from .emulator_models import COMPUTED, MODELS, PARENT_FIELD, seed, stamp

__all__ = ["OdooDB", "OdooFault"]


class OdooFault(Exception):
    """An error Odoo would raise: ``name`` is the exception's dotted name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name, self.message = name, message


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _fault(kind: str, message: str) -> OdooFault:
    return OdooFault(kind if "." in kind else f"odoo.exceptions.{kind}", message)


class OdooDB:
    """Records per model (``tables[model][id] = {field: value}``) behind a lock; ids count from 1."""

    def __init__(self, rows: dict[str, list[dict]] | None = None, clock: Callable[[], datetime] = _utcnow) -> None:
        self.tables: dict[str, dict[int, dict[str, Any]]] = {m: {} for m in MODELS}
        self.clock = clock
        self.lock = threading.RLock()
        self.reservations: dict[int, list[tuple[int, float]]] = {}  # sale order id -> (quant id, qty)
        self.vanished: set[tuple[str, int]] = set()  # fault injection: ids that read as deleted
        # one2many fields are computed from their inverse many2one: (comodel, inverse) -> parent id -> child ids
        self._children_of: dict[tuple[str, str], dict[int, list[int]]] = {
            tuple(kind.split(":")[1:]): {} for fields in MODELS.values() for kind in fields.values()
            if kind.startswith("o2m:")}
        self._load(rows if rows is not None else seed())

    # -- loading
    def _load(self, rows: dict[str, list[dict]]) -> None:
        for model in ("res.currency", "res.users", "stock.warehouse", "stock.location", "res.partner",
                      "product.template", "product.product", "stock.quant"):
            for i, vals in enumerate(rows.get(model, [])):
                self._insert(model, dict(vals), stamp(i))
        for i, order in enumerate(rows.get("sale.order", [])):
            order = dict(order)
            lines, confirm = order.pop("lines"), order.pop("confirm", False)
            order_id = self._insert("sale.order", order, stamp(i))
            for line in lines:
                self._insert("sale.order.line", {**line, "order_id": order_id}, stamp(i))
            if confirm:
                self._confirm(order_id, stamp(i))

    def _insert(self, model: str, vals: dict[str, Any], when: datetime) -> int:
        table = self.tables[model]
        new_id = max(table, default=0) + 1
        record = {f: None for f, kind in MODELS[model].items() if not kind.startswith("o2m")}
        record.update({"id": new_id, "create_date": when, "write_date": when})
        if "active" in record:
            record["active"] = True
        record.update(self._defaults(model, new_id))
        record.update(vals)
        table[new_id] = record
        self._index(model, record)
        return new_id

    def _index(self, model: str, record: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        for (comodel, inverse), index in self._children_of.items():
            if comodel != model or (old is not None and old.get(inverse) == record.get(inverse)):
                continue
            if old is not None and old.get(inverse) in index:
                index[old[inverse]].remove(record["id"])
            if record.get(inverse):
                index.setdefault(record[inverse], []).append(record["id"])

    def _defaults(self, model: str, new_id: int) -> dict[str, Any]:
        if model == "sale.order":
            return {"name": f"S{new_id:05d}", "state": "draft", "currency_id": 1, "warehouse_id": 1,
                    "date_order": self.clock()}
        if model == "stock.quant":
            return {"quantity": 0.0, "reserved_quantity": 0.0, "inventory_quantity_set": False}
        if model == "sale.order.line":
            return {"qty_delivered": 0.0, "price_unit": 0.0}
        return {}

    # -- the resolver the domain evaluator uses
    def value(self, model: str, record: dict[str, Any], path: str) -> Any:
        head, _, rest = path.partition(".")
        kind = "int" if head == "id" else MODELS[model].get(head)
        if kind is None:
            raise DomainError(f"Invalid field {model}.{head} in leaf {path!r}")
        if not record:
            if rest and kind.startswith("m2o:"):
                self.value(kind[4:], {}, rest)
            return None
        value = self.computed(model, record, head)
        if rest and kind.startswith("m2o:"):
            target = self.tables[kind[4:]].get(value) if value else None
            return self.value(kind[4:], target, rest) if target else None
        return value

    def ancestors(self, model: str, record_id: int) -> list[int]:
        chain, parent = [], PARENT_FIELD.get(model)
        while record_id and record_id not in chain:
            chain.append(record_id)
            record = self.tables[model].get(record_id)
            record_id = record.get(parent) if record and parent else None
        return chain

    def field_model(self, model: str, path: str) -> str | None:
        kind = MODELS[model].get(path, "")
        return model if path == "id" else kind[4:] if kind.startswith("m2o:") else None

    def computed(self, model: str, record: dict[str, Any], name: str) -> Any:
        if (model, name) not in COMPUTED and not MODELS[model].get(name, "").startswith("o2m"):
            return record.get(name)
        if name == "available_quantity":
            return record["quantity"] - record["reserved_quantity"]
        if name == "price_subtotal":
            return round((record["product_uom_qty"] or 0) * (record["price_unit"] or 0), 2)
        if name in ("amount_total", "amount_untaxed"):
            return round(sum(self.computed("sale.order.line", self.tables["sale.order.line"][i], "price_subtotal")
                             for i in self._children("sale.order.line", "order_id", record["id"])), 2)
        if name == "complete_name":
            names = [self.tables[model][i]["name"] for i in reversed(self.ancestors(model, record["id"]))]
            return "/".join(names)
        _, comodel, inverse = MODELS[model][name].split(":")
        return self._children(comodel, inverse, record["id"])

    def _children(self, comodel: str, inverse: str, parent_id: int) -> list[int]:
        return list(self._children_of[(comodel, inverse)].get(parent_id, ()))

    # -- reading
    def search(self, model: str, domain: Any = (), offset: int = 0, limit: int | None = None,
               order: str | None = None, context: dict | None = None) -> list[int]:
        domain = list(domain or [])
        if self._active_test(model, domain, context):
            domain = [("active", "=", True), *domain]  # the leftover leaves are ANDed
        predicate = compile_domain(domain, model, self)
        found = [r for r in self.tables[model].values() if predicate(r)]
        found.sort(key=self._order_key(model, order or "id"))
        return [r["id"] for r in found[offset:(offset + limit) if limit else None]]

    def _active_test(self, model: str, domain: list, context: dict | None) -> bool:
        if "active" not in MODELS[model] or (context or {}).get("active_test") is False:
            return False
        return not any(isinstance(t, list | tuple) and t and t[0] == "active" for t in domain)

    def _order_key(self, model: str, order: str) -> Callable[[dict], tuple]:
        spec = []
        for part in order.split(","):
            words = part.split()
            if not words or words[0] not in {"id", *MODELS[model]} or (len(words) > 1 and
                                                                        words[1].lower() not in ("asc", "desc")):
                raise _fault("builtins.ValueError", f"Invalid order {order!r} for model {model}")
            spec.append((words[0], len(words) > 1 and words[1].lower() == "desc"))

        def key(record: dict) -> tuple:
            out = []
            for name, desc in spec:
                value = self.computed(model, record, name)
                none = value is None
                rank = _Desc(value) if desc and not none else value
                out.append((none, rank if not none else 0))
            return tuple(out)
        return key

    def read(self, model: str, ids: list[int], fields: list[str] | None = None) -> list[dict[str, Any]]:
        names = self._fields(model, fields)
        out = []
        for record_id in ids:
            record = self.tables[model].get(record_id)
            if record is None or (model, record_id) in self.vanished:
                raise _fault("MissingError", f"Record does not exist or has been deleted.\n"
                                             f"(Record: {model}({record_id},), User: 2)")
            out.append({"id": record_id, **{f: self._export(model, record, f) for f in names}})
        return out

    def _fields(self, model: str, fields: list[str] | None) -> list[str]:
        names = list(fields) if fields else [f for f in MODELS[model]]
        for name in names:
            if name != "id" and name not in MODELS[model] and name != "display_name":
                raise _fault("builtins.ValueError", f"Invalid field '{name}' on model '{model}'")
        return [n for n in names if n != "id"]

    def _export(self, model: str, record: dict[str, Any], name: str) -> Any:
        if name == "display_name":
            return self.display_name(model, record)
        kind = MODELS[model][name]
        value = self.computed(model, record, name)
        if kind == "bool":
            return bool(value)
        if value is None:
            return False
        if kind == "datetime":
            return value.strftime("%Y-%m-%d %H:%M:%S")
        if kind.startswith("m2o:"):
            target = self.tables[kind[4:]].get(value)
            return [value, self.display_name(kind[4:], target)] if target else False
        return value

    def display_name(self, model: str, record: dict[str, Any]) -> str:
        if model == "product.product" and record.get("default_code"):
            return f"[{record['default_code']}] {record['name']}"
        if model == "stock.location":
            return self.computed(model, record, "complete_name")
        return str(record.get("name") or f"{model},{record['id']}")

    # -- writing
    def create(self, model: str, vals_list: list[dict] | dict, context: dict | None = None) -> list[int] | int:
        single = isinstance(vals_list, dict)
        ids = [self._create_one(model, dict(vals), context or {}) for vals in ([vals_list] if single else vals_list)]
        return ids[0] if single else ids

    def _create_one(self, model: str, vals: dict, context: dict) -> int:
        lines = vals.pop("order_line", None) if model == "sale.order" else None
        self._check_vals(model, vals)
        if model == "stock.quant" and context.get("inventory_mode"):
            existing = self.search(model, [("product_id", "=", vals.get("product_id")),
                                           ("location_id", "=", vals.get("location_id"))])
            if existing:
                self.write(model, existing[:1], {"inventory_quantity": vals.get("inventory_quantity")})
                return existing[0]
        if model == "stock.quant" and vals.get("inventory_quantity") is not None:
            vals["inventory_quantity_set"] = True
        if model == "sale.order" and not vals.get("partner_id"):
            raise _fault("ValidationError", "The operation cannot be completed: Customer is required.")
        new_id = self._insert(model, vals, self.clock())
        for command in lines or []:
            if not (isinstance(command, list | tuple) and len(command) == 3 and command[0] == 0):
                raise _fault("ValidationError", f"this emulator takes only (0, 0, vals) line commands, got {command!r}")
            self._create_one("sale.order.line", {**command[2], "order_id": new_id}, context)
        return new_id

    def _check_vals(self, model: str, vals: dict) -> None:
        for name, value in vals.items():
            kind = MODELS[model].get(name)
            if kind is None or (model, name) in COMPUTED or kind.startswith("o2m"):
                raise _fault("builtins.ValueError", f"Invalid field '{name}' on model '{model}'")
            if kind.startswith("m2o:") and value and value not in self.tables[kind[4:]]:
                raise _fault("MissingError", f"Record does not exist or has been deleted.\n"
                                             f"(Record: {kind[4:]}({value},), User: 2)")
            if kind == "datetime" and isinstance(value, str):
                vals[name] = datetime.fromisoformat(value)
        if model == "sale.order.line" and not vals.get("product_id"):
            raise _fault("ValidationError", "Missing required value for the field 'Product' (product_id).")

    def write(self, model: str, ids: list[int], vals: dict) -> bool:
        vals = dict(vals)
        self._check_vals(model, vals)
        when = self.clock()
        for record_id in ids:
            record = self.tables[model].get(record_id)
            if record is None:
                raise _fault("MissingError", f"Record does not exist or has been deleted.\n"
                                             f"(Record: {model}({record_id},), User: 2)")
            if model == "stock.quant" and "inventory_quantity" in vals:
                vals["inventory_quantity_set"] = True
            old = dict(record)
            record.update(vals, write_date=when)
            self._index(model, record, old)
        return True

    # -- actions
    def action(self, model: str, method: str, ids: list[int]) -> Any:
        actions = {("sale.order", "action_confirm"): self._confirm, ("sale.order", "action_cancel"): self._cancel,
                   ("stock.quant", "action_apply_inventory"): self._apply_inventory}
        handler = actions.get((model, method))
        if handler is None:
            raise _fault("builtins.AttributeError", f"The method '{method}' does not exist on the model '{model}'")
        for record_id in ids:
            if record_id not in self.tables[model]:
                raise _fault("MissingError", f"Record does not exist or has been deleted.\n"
                                             f"(Record: {model}({record_id},), User: 2)")
            handler(record_id, self.clock())
        return True

    def _confirm(self, order_id: int, when: datetime) -> None:
        order = self.tables["sale.order"][order_id]
        if order["state"] not in ("draft", "sent"):
            raise _fault("UserError", f"Some orders are not in a state requiring confirmation. ({order['name']})")
        order.update(state="sale", write_date=when)
        taken = self.reservations.setdefault(order_id, [])
        internal = {i for i, loc in self.tables["stock.location"].items() if loc["usage"] == "internal"}
        for line_id in self._children("sale.order.line", "order_id", order_id):
            line = self.tables["sale.order.line"][line_id]
            need = line["product_uom_qty"] or 0.0
            for quant in sorted(self.tables["stock.quant"].values(), key=lambda q: q["id"]):
                if need <= 0 or quant["product_id"] != line["product_id"] or quant["location_id"] not in internal:
                    continue
                take = min(need, max(quant["quantity"] - quant["reserved_quantity"], 0.0))
                if take > 0:
                    quant.update(reserved_quantity=quant["reserved_quantity"] + take, write_date=when)
                    taken.append((quant["id"], take))
                    need -= take

    def _cancel(self, order_id: int, when: datetime) -> None:
        self.tables["sale.order"][order_id].update(state="cancel", write_date=when)
        for quant_id, qty in self.reservations.pop(order_id, []):
            quant = self.tables["stock.quant"][quant_id]
            quant.update(reserved_quantity=max(quant["reserved_quantity"] - qty, 0.0), write_date=when)

    def _apply_inventory(self, quant_id: int, when: datetime) -> None:
        quant = self.tables["stock.quant"][quant_id]
        if not quant["inventory_quantity_set"]:
            return
        quant.update(quantity=quant["inventory_quantity"] or 0.0, inventory_quantity=None,
                     inventory_quantity_set=False, write_date=when, in_date=when)


class _Desc:
    """Inverts the ordering of a value (for ``desc`` in an order spec)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and other.value == self.value
