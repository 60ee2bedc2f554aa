"""Every `widget-server` command on a PostgreSQL database, by --db and by WIDGET_DB."""

from __future__ import annotations

from pathlib import Path

from tests.pg import PgServer
from tests.store.helpers import plain
from tests.support import run_cli

ORIGIN = "https://shop.test"
POLICY = ('auto_close_days = 3\n[[severity]]\nkey = "normal"\nlabel = "Normal"\n'
          'first_response = "4h"\n')


def test_every_command_works_on_a_postgresql_url(pg_server: PgServer, tmp_path: Path) -> None:
    db = pg_server.fresh()
    run_cli("init", "--db", db, "--site-name", "Shop", "--origin", ORIGIN,
            "--admin-email", "admin@shop.test")
    (key,), = plain(db, "SELECT key FROM sites")
    by_env = {"WIDGET_DB": db}
    assert run_cli("token", "create", "--site", key, "--name", "ci",
                   env=by_env).stdout.startswith("wst_")
    run_cli("agent", "add", "--db", db, "--email", "Ada@Shop.test", "--password",
            "pw-long-enough-1", "--site", key)
    listed = run_cli("agent", "list", env=by_env).stdout
    assert "Ada@Shop.test" in listed and "admin@shop.test" in listed
    run_cli("agent", "disable", "--db", db, "--email", "ADA@shop.test")  # without case
    assert "site key: " + key in run_cli("site", "show", "--db", db).stdout
    run_cli("site", "set-retention", "--db", db, "--site", key, "--days", "30")
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    run_cli("policy", "import", "--db", db, "--site", key, str(policy))
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "export.md").write_text("---\ntitle: Export data\ncategory: Data\n---\n"
                                        "Use the export button.\n")
    assert "1 created" in run_cli("articles", "import", "--db", db, "--site", key,
                                  str(articles)).stdout
    assert "nothing to delete" in run_cli("retention", "run", "--db", db).stdout
    erase = run_cli("visitor", "erase", "--db", db, "--site", key, "--email", "no@x.test",
                    "--yes", check=False)
    assert "nothing was erased" in erase.stderr
    assert plain(db, "SELECT retention_days, policy FROM sites") == [(30, POLICY)]
    assert plain(db, "SELECT active FROM agents WHERE email = 'ada@shop.test'") == [(0,)]
    assert plain(db, "SELECT COUNT(*) FROM privacy_audit") == [(1,)]
