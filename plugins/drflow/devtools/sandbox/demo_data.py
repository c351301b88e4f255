"""Demo data of the API Marketplace: one database per component, the tables its drills validate."""

from __future__ import annotations

import psycopg
from psycopg import sql

# database -> (table, DDL, rows generated from n = 1..count)
DEMO_TABLES: dict[str, tuple[str, str, str, int]] = {
    "users": (
        "accounts",
        "id bigint primary key, email text not null unique, created_at timestamptz not null",
        "select n, 'user' || n || '@example.com', timestamptz '2026-01-01' + n * interval '1 minute'",
        5000,
    ),
    "billing": (
        "invoices",
        "id bigint primary key, account_id bigint not null, amount_cents bigint not null",
        "select n, 1 + n %% 5000, (n * 7919) %% 100000",
        20000,
    ),
    "gateway": ("routes", "id int primary key, path text not null", "select n, '/api/v1/r' || n", 200),
    "portal": ("pages", "id int primary key, slug text not null", "select n, 'page-' || n", 300),
    "catalog": ("apis", "id int primary key, name text not null", "select n, 'api-' || n", 150),
    "analytics": (
        "events",
        "id bigint primary key, kind text not null",
        "select n, (array['view','call','error'])[1 + n %% 3]",
        50000,
    ),
}


# Further tables a database's validation suite checks: billing's payments refer to invoices without a foreign
# key (as services that own their tables often do), so the example's `orphans` check has a relationship to
# prove, and a CHECK constraint for the `constraints` check.
DEMO_RELATED: dict[str, tuple[str, str, str, int]] = {
    "billing": (
        "payments",
        "id bigint primary key, invoice_id bigint not null, amount_cents bigint not null check (amount_cents >= 0)",
        "select n, n, (n * 7919) %% 100000",
        15000,
    ),
}


def seed_demo_data(admin_dsn: str) -> dict[str, int]:
    """Create the databases and tables if missing and fill empty tables; returns row counts."""
    counts: dict[str, int] = {}
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        existing = {row[0] for row in admin.execute("select datname from pg_database")}
        for database in DEMO_TABLES:
            if database not in existing:
                admin.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    tables = [*DEMO_TABLES.items(), *DEMO_RELATED.items()]
    for database, (table, columns, generator, count) in tables:
        with psycopg.connect(admin_dsn, dbname=database, autocommit=True) as conn:
            conn.execute(sql.SQL(f"create table if not exists {{}} ({columns})").format(sql.Identifier(table)))
            present = conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(table))).fetchone()
            if present is not None and present[0] == 0:
                conn.execute(
                    sql.SQL(f"insert into {{}} {generator} from generate_series(1, %s) as n").format(
                        sql.Identifier(table)
                    ),
                    (count,),
                )
            final = conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(table))).fetchone()
            counts[f"{database}.{table}"] = final[0] if final else 0
    return counts
