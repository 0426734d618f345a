#!/usr/bin/env python3
"""DuckDB side of the reconciliation benchmark (daemon/benches/reconcile.rs).

Loads the CSVs the Rust bench wrote into in-memory DuckDB tables (not timed),
then times the same matching as SQL with 2 threads and prints one JSON line:
{"seconds": best of 3, "checksum": "..."}.

  core: normalised order-id join + amount tolerance max(50, 1 % of order);
        checksum "matched count / matched sum (minor units)".
  full: every claim's outcome (no_order, duplicate by last click, refunded,
        partially_refunded, amount_mismatch, matched, network_*), written to a
        table; checksum = outcome counts as JSON.
  durable: `full` against a database file (--db; claims and orders stored
        and checkpointed there first, not timed); each timed round opens the
        file, writes the decisions table, checkpoints and closes it: the
        like-for-like of Reckon writing decisions durably to its store.

Requires `pip install duckdb`.
"""
import argparse
import json
import os
import time

import duckdb

CORE_SQL = """
SELECT count(*), coalesce(sum(c.amount_cents), 0)
FROM claims c
JOIN orders o ON lower(trim(c.order_id)) = lower(trim(o.order_id))
WHERE abs(c.amount_cents - o.amount_cents) <= greatest(50, o.amount_cents // 100)
"""

FULL_SQL = """
CREATE OR REPLACE TABLE decisions AS
WITH o AS (
  SELECT lower(trim(order_id)) AS k, order_id, amount_cents, refunded_cents FROM orders
),
j AS (
  SELECT c.source, c.external_id, c.status, c.t, c.amount_cents AS claimed,
         o.order_id AS oid, o.amount_cents AS oamt, o.refunded_cents AS ref,
         c.status IN ('reversed', 'rejected') AS out
  FROM claims c LEFT JOIN o ON lower(trim(c.order_id)) = o.k
),
r AS (
  SELECT *, row_number() OVER (
    PARTITION BY oid, out ORDER BY t DESC, source, external_id) AS rn
  FROM j
)
SELECT source, external_id, oid,
  CASE
    WHEN status = 'reversed' THEN 'network_reversed'
    WHEN status = 'rejected' THEN 'network_rejected'
    WHEN oid IS NULL THEN 'no_order'
    WHEN rn > 1 THEN 'duplicate'
    WHEN ref >= oamt THEN 'refunded'
    WHEN ref > 0 THEN 'partially_refunded'
    WHEN abs(claimed - oamt) > greatest(50, oamt // 100) THEN 'amount_mismatch'
    ELSE 'matched'
  END AS outcome
FROM r
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["core", "full", "durable"])
    ap.add_argument("--claims", required=True)
    ap.add_argument("--orders", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", help="database file for `durable` (replaced)")
    a = ap.parse_args()
    if a.mode == "durable":
        if not a.db:
            ap.error("durable needs --db")
        for f in (a.db, a.db + ".wal"):
            if os.path.exists(f):
                os.remove(f)
    con = duckdb.connect(a.db if a.mode == "durable" else ":memory:")
    con.execute(f"SET threads = {a.threads}")
    con.execute(
        "CREATE TABLE claims AS SELECT * FROM read_csv(?, header = true, all_varchar = false, "
        "types = {'order_id': 'VARCHAR'})",
        [a.claims],
    )
    con.execute(
        "CREATE TABLE orders AS SELECT * FROM read_csv(?, header = true, "
        "types = {'order_id': 'VARCHAR'})",
        [a.orders],
    )
    if a.mode == "durable":
        con.execute("CHECKPOINT")
        con.close()
    best = float("inf")
    checksum = ""
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        if a.mode == "durable":
            con = duckdb.connect(a.db)
            con.execute(f"SET threads = {a.threads}")
            con.execute(FULL_SQL)
            con.execute("CHECKPOINT")
            con.close()
            best = min(best, time.perf_counter() - t0)
            con = duckdb.connect(a.db, read_only=True)
            rows = con.execute(
                "SELECT outcome, count(*) FROM decisions GROUP BY 1 ORDER BY 1"
            ).fetchall()
            con.close()
            checksum = json.dumps({k: v for k, v in rows}, separators=(",", ":"))
            continue
        if a.mode == "core":
            n, s = con.execute(CORE_SQL).fetchone()
            checksum = f"{n} / {s}"
        else:
            con.execute(FULL_SQL)
            rows = con.execute(
                "SELECT outcome, count(*) FROM decisions GROUP BY 1 ORDER BY 1"
            ).fetchall()
            checksum = json.dumps({k: v for k, v in rows}, separators=(",", ":"))
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"seconds": best, "checksum": checksum}))


if __name__ == "__main__":
    main()
