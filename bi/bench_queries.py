#!/usr/bin/env python3
"""Times every dashboard query against a database: each Superset chart's query (written the way
Superset writes it for the chart's form data: the dataset's metric expressions, the time grain,
the guild filter on guild_id as text) and each Grafana panel's query (macros expanded over the
data's whole time range). Run by `scripts/bench --only bi`.

    bench_queries.py --dsn DSN [--runs 3] [--goal-ms 500] [--incremental 1000]

Prints one line per query (median of the runs, ms), then the slowest, the 95th percentile and
how many miss the goal. Exits non-zero when a query fails or returns no rows; missing the goal
is reported, not a failure (the benchmark measures, the tests decide).

--incremental N then times build_rollups() after N new point transactions on the last day of
the ledger against a full rebuild (build_rollups(full => true)) and against plain SQL that sums
the whole ledger for the balances of that day; each in a transaction rolled back, so the
database stays as loaded. Ratios are printed, never asserted.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import psycopg2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "superset"))
sys.path.insert(0, str(HERE / "grafana"))
import build_bundle  # noqa: E402
import check_grafana  # noqa: E402

GRAIN = {"P1D": "day", "P1W": "week", "P1M": "month"}


def chart_sql(chart, datasets):
    spec = datasets["datasets"][chart["dataset"]]
    metrics = chart.get("metrics") or ([chart["metric"]] if "metric" in chart else [])
    select_metrics = [f'{spec["metrics"][m]["sql"]} AS "{m}"' for m in metrics if m in spec["metrics"]]
    where = ["guild_id::text = %(guild)s"]
    where += [f"{f['col']} = '{f['val']}'" for f in chart.get("filters", [])]
    view = f"guildstats_mart.{chart['dataset']}"
    viz = chart["viz"]
    limit = chart.get("limit", 10000)
    direction = "ASC" if chart.get("ascending") else "DESC"
    if viz in ("line", "bar", "big_number"):
        axis = f"date_trunc('{GRAIN[chart.get('grain', 'P1D')]}', {spec['time']})"
        keys = [axis] + chart.get("groupby", [])
        return (f"SELECT {', '.join(keys + select_metrics)} FROM {view} WHERE {' AND '.join(where)} "
                f"GROUP BY {', '.join(str(i) for i in range(1, len(keys) + 1))} ORDER BY 1 LIMIT {limit}")
    if viz == "big_number_total":
        return f"SELECT {', '.join(select_metrics)} FROM {view} WHERE {' AND '.join(where)}"
    if viz == "table" and "columns" in chart:
        order = f" ORDER BY {chart['order']} {direction}" if chart.get("order") else ""
        return f"SELECT {', '.join(chart['columns'])} FROM {view} WHERE {' AND '.join(where)}{order} LIMIT {limit}"
    keys = chart.get("groupby", []) if viz in ("table", "pie") else [chart["x"], chart["y"]]
    order = chart.get("order") or metrics[0]
    order_sql = f'"{order}"' if order in metrics else order
    return (f"SELECT {', '.join(keys + select_metrics)} FROM {view} WHERE {' AND '.join(where)} "
            f"GROUP BY {', '.join(keys)} ORDER BY {order_sql} {direction} LIMIT {limit}")


def queries(connection):
    datasets, _, dashboards = build_bundle.load_sources()
    found = []
    for dashboard in dashboards:
        for chart in dashboard["charts"]:
            sql = chart_sql(chart, datasets).replace("%", "%%").replace("%%(guild)s", "%(guild)s")
            found.append((f"superset {dashboard['title']}: {chart['title']}", sql))
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(hour), max(hour) + interval '1 hour' FROM guildstats_mart.game_servers_hourly")
        time_from, time_to = cursor.fetchone()
    time_from = time_from or time_to
    for path in sorted((HERE / "grafana/dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in check_grafana.panel_list(dashboard):
            for target in panel.get("targets", []):
                sql = check_grafana.substitute_variables(target["rawSql"], {"guild": "%(guild)s"})
                sql = sql.replace("'%(guild)s'", "%(guild)s")
                sql = check_grafana.expand_macros(sql, time_from, time_to)
                # psycopg2 takes % as a parameter marker: literal ones are doubled.
                sql = sql.replace("%", "%%").replace("%%(guild)s", "%(guild)s")
                found.append((f"grafana {dashboard['title']}: {panel['title']}", sql))
    return found


# The plain-SQL way to the rewritten day's economy: every balance from the whole ledger.
PLAIN_LAST_DAY = """
SELECT count(*), sum(balance), count(*) FILTER (WHERE balance > 0),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(balance, 0))
FROM (SELECT user_id, sum(amount) AS balance FROM guildstats.raw_point_transactions
      WHERE guild_id = %(guild)s::bigint GROUP BY user_id) b"""


def timed_in_rollback(connection, guild, new_rows, sql):
    """Milliseconds of `sql` after `new_rows` new point transactions, all rolled back after."""
    connection.autocommit = False
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO guildstats.raw_point_transactions (guild_id, user_id, amount, reason, tx_ts, tx_key)
                   SELECT %(guild)s::bigint, u.ids[1 + i %% cardinality(u.ids)], CASE WHEN i %% 3 = 0 THEN -5 ELSE 10 END,
                          'bench', l.last_tx - i * interval '1 second', 'bench incremental ' || i
                   FROM (SELECT array_agg(user_id ORDER BY user_id) AS ids FROM guildstats.members
                          WHERE guild_id = %(guild)s::bigint) u,
                        (SELECT max(tx_ts) AS last_tx FROM guildstats.raw_point_transactions
                          WHERE guild_id = %(guild)s::bigint) l,
                        generate_series(1, %(rows)s) i
                   WHERE cardinality(u.ids) > 0 AND l.last_tx IS NOT NULL""",
                {"guild": guild, "rows": new_rows})
            started = time.perf_counter()
            cursor.execute(sql, {"guild": guild})
            cursor.fetchall()
            return (time.perf_counter() - started) * 1000
    finally:
        connection.rollback()
        connection.autocommit = True


def incremental(connection, guild, new_rows):
    build = timed_in_rollback(connection, guild, new_rows, "SELECT * FROM guildstats.build_rollups()")
    full = timed_in_rollback(connection, guild, new_rows, "SELECT * FROM guildstats.build_rollups(full => true)")
    plain = timed_in_rollback(connection, guild, new_rows, PLAIN_LAST_DAY)
    print(f"bi incremental: build_rollups() after {new_rows:,} new point transactions {build:,.0f} ms; "
          f"full rebuild {full:,.0f} ms ({full / build:.1f}x); plain SQL of the day's balances over the "
          f"whole ledger {plain:,.0f} ms ({plain / build:.2f}x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--goal-ms", type=float, default=500)
    parser.add_argument("--incremental", type=int, metavar="N", help="also time build_rollups() after N new point transactions")
    parser.add_argument("--allow-empty", action="store_true", help="a query without rows is no failure (tiny smoke data)")
    args = parser.parse_args()
    connection = psycopg2.connect(args.dsn)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT guild_id::text FROM guildstats_mart.guilds ORDER BY guild_id LIMIT 1")
        guild = cursor.fetchone()[0]
    results, failures = [], []
    for name, sql in queries(connection):
        times = []
        try:
            for _ in range(args.runs):
                started = time.perf_counter()
                with connection.cursor() as cursor:
                    cursor.execute(sql, {"guild": guild})
                    rows = cursor.fetchall()
                times.append((time.perf_counter() - started) * 1000)
        except psycopg2.Error as error:
            failures.append(f"{name}: {str(error).strip()}")
            continue
        if not rows and not args.allow_empty:
            failures.append(f"{name}: no rows")
        results.append((statistics.median(times), name, len(rows)))
    results.sort(reverse=True)
    print(f"{'ms':>9}  {'rows':>6}  query")
    for ms, name, rows in results:
        print(f"{ms:9.1f}  {rows:6d}  {name}")
    if results:
        ordered = sorted(ms for ms, _, _ in results)
        p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
        missing = sum(1 for ms in ordered if ms > args.goal_ms)
        print(f"bi: {len(results)} queries, slowest {ordered[-1]:.1f} ms ({results[0][1]}), "
              f"p95 {p95:.1f} ms, {missing} over the {args.goal_ms:.0f} ms goal")
    if args.incremental:
        incremental(connection, guild, args.incremental)
    if failures:
        print("bi FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
