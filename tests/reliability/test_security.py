"""Security checks: a canary secret never leaves its environment variable; TLS verification cannot be turned off;
only parameterised SQL; signatures compared in constant time; files named in plugins.toml resolve relative to it.

(Mapping paths cannot reach outside the record: tests/reliability/test_bad_input.py. Dependency audit: pip-audit
in .ci/run.)
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest
from campaign_jobs import ENV, JOBS, SECRETS, run_cli, write_combined_project
from fault_campaign import campaign_faults


REPO = Path(__file__).resolve().parents[2]
SOURCES = [p for p in [*REPO.glob("*.py"), *REPO.glob("core/*.py"), *REPO.glob("connectors/**/*.py")]
           if "emulator" not in p.name]

# -- canary secrets -------------------------------------------------------------------------------------------

READ_COMMANDS = [("status", "--json"), ("runs", "--json"), ("quarantine", "list", "--json"), ("config", "check"),
                 ("orders", "forwarded", "--json"), ("messages", "list", "--json")]
CANARY_JOBS = ("shopify sync", "square sync", "odoo order forwarding", "twilio notify")


def _store_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.glob("store.db*"))


@pytest.mark.slow
def test_a_canary_secret_never_appears_in_output_logs_errors_status_or_the_store(tmp_path: Path) -> None:
    """Every connector's secret comes from ${ENV}: run every job with faults and debug JSON logs, then with wrong
    secrets (the auth error paths), then every read command; none of it may show a secret, nor may the store."""
    emulators = {name: JOBS[name].emulator(campaign_faults(seed=3), 1) for name in CANARY_JOBS}
    for emu in emulators.values():
        emu.start()
    try:
        write_combined_project(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", emulators)
        seen = [_text(run_cli(tmp_path, "sync", "web", "till", "--no-progress"))]
        wrong = {k: v[::-1] for k, v in ENV.items()}  # other secrets: every server refuses them
        refused = _text(run_cli(tmp_path, "-vv", "sync", "shop", "tills", "erp", "--json", "--no-progress",
                                env=wrong)) + _text(run_cli(tmp_path, "-vv", "notify", "--json", env=wrong))
        for marker in ("HTTP 401", "refused login", "20003"):  # Shopify/Square, Odoo, Twilio
            assert marker in refused, refused[-3000:]
        seen.append(refused)
        seen.append(_text(run_cli(tmp_path, "--log-format", "json", "-vv", "sync", "--json", "--no-progress")))
        seen.append(_text(run_cli(tmp_path, "--log-format", "json", "-vv", "notify", "--json")))
        for args in READ_COMMANDS:
            seen.append(_text(run_cli(tmp_path, *args), tracebacks=False))
    finally:
        for emu in emulators.values():
            emu.stop()
    everything = "\n".join(seen)
    assert '"attempt"' in everything  # the faults made retries, logged at debug level
    for secret in SECRETS:
        assert secret not in everything
        assert secret[::-1] not in everything
        assert secret.encode() not in _store_bytes(tmp_path)


def _text(proc: subprocess.CompletedProcess[str], *, tracebacks: bool = True) -> str:
    """All a command printed (with -v a failed run prints its traceback: that must not show secrets either)."""
    assert tracebacks or "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_a_secret_typed_into_plugins_toml_instead_of_env_is_not_echoed_by_errors(tmp_path: Path) -> None:
    """An invalid value next to a literal secret: the error names the field, never the secret's value."""
    canary = "shpat_CANARY_literal_0123456789"
    (tmp_path / "plugins.toml").write_text(
        f'[connectors.shop]\ntype = "shopify"\nshop = "not a shop domain"\naccess_token = "{canary}"\n'
        'page_size = "many"\n', encoding="utf-8")
    proc = run_cli(tmp_path, "config", "check")
    assert proc.returncode == 2 and "page_size" in proc.stderr
    assert canary not in proc.stdout + proc.stderr


# -- TLS ------------------------------------------------------------------------------------------------------

def test_no_source_turns_tls_verification_off() -> None:
    offenders = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for pattern in (r"verify\s*=\s*False", r"CERT_NONE", r"check_hostname\s*=\s*False", r"_create_unverified"):
            offenders += [f"{path.relative_to(REPO)}: {pattern}" for _ in re.finditer(pattern, text)]
    assert offenders == []


@pytest.mark.parametrize("key", ["verify", "verify_tls", "insecure", "ssl_verify"])
def test_a_setting_to_turn_tls_off_is_refused_naming_the_key(key: str, tmp_path: Path) -> None:
    """No connector has such a setting, so it cannot be turned off silently: plugins.toml saying so is an error."""
    (tmp_path / "plugins.toml").write_text(
        '[connectors.shop]\ntype = "shopify"\nshop = "harbour-goods-hk.myshopify.com"\n'
        f'access_token = "${{SHOPIFY_TOKEN}}"\n[connectors.shop.http]\n{key} = false\n', encoding="utf-8")
    proc = run_cli(tmp_path, "config", "check")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert key in proc.stderr


# -- SQL ------------------------------------------------------------------------------------------------------

SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|ALTER|COPY|TRUNCATE|CREATE|DROP)\b")
#: what f-strings may put into SQL text: identifiers and placeholder lists built from code, never values
#: (each reviewed: table and column names come from the SQLAlchemy metadata, placeholders from the dialect)
IDENTIFIERS = {"table", "stage", "column", "column.name", "col_list", "', '.join(cols)", "sets", "scope", "marks",
               "p", "self.ph", "true", "kind", "default", "', '.join('?' * len(cols))", "','.join('?' * len(chunk))",
               # placeholders, table and index names of our own metadata, a column type compiled by SQLAlchemy
               "ph", "', '.join([ph] * len(keys))", "name", "table.name",
               "column.type.compile(dialect=store.engine.dialect)"}


def _sql_strings(tree: ast.AST) -> list[tuple[int, str, ast.AST]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if SQL.search(literal):
                found += [(node.lineno, ast.unparse(v.value), node) for v in node.values
                          if isinstance(v, ast.FormattedValue)]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add) and \
                isinstance(node.left, ast.Constant) and isinstance(node.left.value, str) and SQL.search(node.left.value):
            found.append((node.lineno, f"{type(node.op).__name__} formatting", node))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" and \
                isinstance(node.func.value, ast.Constant) and SQL.search(str(node.func.value.value)):
            found.append((node.lineno, ".format()", node))
    return found


def test_sql_text_only_interpolates_identifiers_never_values() -> None:
    offenders = [f"{path.relative_to(REPO)}:{line}: {expr}" for path in SOURCES
                 for line, expr, _node in _sql_strings(ast.parse(path.read_text(encoding="utf-8")))
                 if expr not in IDENTIFIERS]
    assert offenders == [], "use bound parameters for values: " + "; ".join(offenders)


def test_the_sql_check_catches_a_value_formatted_into_sql() -> None:
    bad = ast.parse('cur.execute(f"SELECT * FROM customer WHERE email = \'{email}\'")\n'
                    'cur.execute("DELETE FROM x WHERE id = %s" % record_id)\n'
                    'conn.execute(sa.text("UPDATE x SET a = {}".format(value)))\n')
    assert [expr for _line, expr, _n in _sql_strings(bad)] == ["email", "Mod formatting", ".format()"]


# -- signatures -----------------------------------------------------------------------------------------------

SECRETISH = re.compile(r"sig|digest|hmac|mac$|expected|token", re.IGNORECASE)


def _non_constant_time_compares(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            names = [ast.unparse(side) for side in (node.left, *node.comparators)]
            if any(SECRETISH.search(n) for n in names) and not any(n.startswith(("len(", "type(")) for n in names):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_webhook_and_callback_signatures_are_compared_in_constant_time() -> None:
    modules = [p for p in SOURCES if "hmac" in p.read_text(encoding="utf-8")]
    verifying = [p for p in modules if re.search(r"def verify\w*\(", p.read_text(encoding="utf-8"))
                 and re.search(r"hmac\.(new|digest)\(", p.read_text(encoding="utf-8"))]
    assert {p.parent.name for p in verifying} >= {"shopify", "pos", "sms"}
    for path in modules:  # every module near an HMAC compares nothing secret with == ...
        assert _non_constant_time_compares(ast.parse(path.read_text(encoding="utf-8"))) == [], path
    for path in verifying:  # ... and every one that computes one to check a signature uses compare_digest
        assert "hmac.compare_digest" in path.read_text(encoding="utf-8"), path


def test_the_signature_check_catches_a_plain_comparison() -> None:
    assert _non_constant_time_compares(ast.parse("ok = expected == given_signature\n"))


# -- paths in plugins.toml ------------------------------------------------------------------------------------

def test_files_named_in_plugins_toml_resolve_relative_to_it_not_to_the_working_directory(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "exports").mkdir(parents=True)
    (project / "maps").mkdir()
    elsewhere.mkdir()
    (project / "exports" / "customers.csv").write_text(
        "id,email,phone,first_name,last_name,updated_at\nC1,a@example.com,,Ann,Lee,2024-05-01 10:00:00\n",
        encoding="utf-8")
    mapping = (REPO / "mappings" / "files.toml").read_text(encoding="utf-8")
    (project / "maps" / "mine.toml").write_text(mapping, encoding="utf-8")
    (elsewhere / "exports").mkdir()  # a decoy next to the working directory: must not be read
    (elsewhere / "exports" / "customers.csv").write_text("id,email\nDECOY,x@example.com\n", encoding="utf-8")
    (project / "plugins.toml").write_text(
        '[storesync]\ndatabase = "sqlite:///store.db"\n[connectors.till]\ntype = "files"\ndirectory = "exports"\n'
        'mapping = "maps/mine.toml"\n[connectors.till.files.customers]\npattern = "customers.csv"\n',
        encoding="utf-8")
    config = str(project / "plugins.toml")
    check = run_cli(elsewhere, "--config", config, "mappings", "check")
    assert check.returncode == 0 and str(project / "maps" / "mine.toml") in check.stdout, check.stderr
    proc = run_cli(elsewhere, "--config", config, "sync", "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    (report,) = json.loads(proc.stdout)
    assert report["streams"][0]["inserted"] == 1
    assert (project / "store.db").exists() and not (elsewhere / "store.db").exists()


def test_pip_audit_is_part_of_the_test_extra() -> None:
    """The dependency audit runs in .ci/run; its tool must come with the test extra CI installs."""
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    test_extra = pyproject.split("test = [", 1)[1].split("]", 1)[0]
    assert "pip-audit" in test_extra
    assert "pip_audit" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
