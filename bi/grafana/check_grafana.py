#!/usr/bin/env python3
"""Checks the Grafana provisioning of bi/grafana without a Grafana (none can be installed here):

    check_grafana.py --dsn DSN [--from 2026-01-01T00:00:00Z --to 2026-06-01T00:00:00Z]

  * every YAML and JSON file parses; datasources have unique uids, the password comes from the
    environment (${VAR}), never a literal;
  * every dashboard has a unique uid, unique panel ids, and every panel, query and variable
    names a datasource uid that is provisioned;
  * every panel query runs against the database DSN with Grafana's SQL macros expanded the way
    Grafana's PostgreSQL plugin expands them ($__time, $__timeFilter, $__timeGroupAlias,
    $__timeFrom, $__timeTo) over the given range, and the dashboard variables set to the first
    value their own query returns: no error, at least one row.
Exits non-zero with one line per problem, naming the file and the panel.
"""

import argparse
import json
import re
import sys
from datetime import datetime
from pathlib import Path

import psycopg2
import yaml

HERE = Path(__file__).resolve().parent
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def interval_seconds(text):
    match = re.fullmatch(r"\s*'?(\d+)([smhd])'?\s*", text)
    if not match:
        raise ValueError(f"interval {text!r} is not like '5m' or '1h'")
    return int(match.group(1)) * UNITS[match.group(2)]


def expand_macros(sql, time_from, time_to):
    lo, hi = f"'{time_from.isoformat()}'", f"'{time_to.isoformat()}'"

    def group_alias(match):
        column, interval = [part.strip() for part in match.group(1).split(",", 1)]
        seconds = interval_seconds(interval)
        return f'to_timestamp(floor(extract(epoch FROM {column}) / {seconds}) * {seconds}) AS "time"'

    sql = re.sub(r"\$__timeGroupAlias\(([^)]*)\)", group_alias, sql)
    sql = re.sub(r"\$__timeFilter\(([^)]*)\)", lambda m: f"{m.group(1).strip()} BETWEEN {lo} AND {hi}", sql)
    sql = re.sub(r"\$__time\(([^)]*)\)", lambda m: f'{m.group(1).strip()} AS "time"', sql)
    sql = sql.replace("$__timeFrom()", lo).replace("$__timeTo()", hi)
    if "$__" in sql:
        raise ValueError(f"a macro this checker does not know: {re.search(r'[$]__[A-Za-z]+', sql).group(0)}")
    return sql


def substitute_variables(sql, values):
    for name, value in sorted(values.items(), key=lambda item: -len(item[0])):
        sql = sql.replace("${" + name + "}", value).replace("$" + name, value)
    return sql


def check_datasources(problems):
    uids = {}
    for path in sorted((HERE / "provisioning/datasources").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        for source in config.get("datasources", []):
            uid = source.get("uid")
            if not uid:
                problems.append(f"{path.name}: datasource {source.get('name')!r} has no uid")
                continue
            if uid in uids:
                problems.append(f"{path.name}: datasource uid {uid} also in {uids[uid]}")
            uids[uid] = path.name
            password = (source.get("secureJsonData") or {}).get("password", "")
            if not re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*\}", str(password)):
                problems.append(f"{path.name}: {uid}: the password must come from the environment (${{VAR}})")
            if "password" in source:
                problems.append(f"{path.name}: {uid}: password at top level (Grafana 12 reads secureJsonData)")
    return uids


def check_providers(problems):
    for path in sorted((HERE / "provisioning/dashboards").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        for provider in config.get("providers", []):
            if provider.get("type") != "file" or not (provider.get("options") or {}).get("path"):
                problems.append(f"{path.name}: provider {provider.get('name')!r} needs type file and options.path")


def panel_list(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # rows hold their collapsed panels


def check_dashboards(datasource_uids, connection, time_from, time_to, problems):
    seen_uids = {}
    queries = 0
    for path in sorted((HERE / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        uid = dashboard.get("uid")
        if not uid or uid in seen_uids:
            problems.append(f"{path.name}: dashboard uid {uid!r} missing or also in {seen_uids.get(uid)}")
        seen_uids[uid] = path.name
        values = {}
        for variable in dashboard.get("templating", {}).get("list", []):
            where = f"{path.name}: variable {variable.get('name')}"
            if (variable.get("datasource") or {}).get("uid") not in datasource_uids:
                problems.append(f"{where}: unknown datasource {variable.get('datasource')}")
                continue
            rows = run(connection, variable["query"], where, problems)
            if rows:
                values[variable["name"]] = str(rows[0][0])
            elif rows is not None:
                problems.append(f"{where}: its query returns no value")
        ids = set()
        for panel in panel_list(dashboard):
            where = f"{path.name}: panel {panel.get('id')} {panel.get('title')!r}"
            if panel.get("id") in ids or not isinstance(panel.get("id"), int):
                problems.append(f"{where}: panel id missing or not unique")
            ids.add(panel.get("id"))
            if panel.get("type") == "row":
                continue
            if (panel.get("datasource") or {}).get("uid") not in datasource_uids:
                problems.append(f"{where}: unknown datasource {panel.get('datasource')}")
            targets = panel.get("targets") or []
            if not targets:
                problems.append(f"{where}: no query")
            for target in targets:
                if (target.get("datasource") or panel.get("datasource") or {}).get("uid") not in datasource_uids:
                    problems.append(f"{where}: query {target.get('refId')}: unknown datasource")
                try:
                    sql = expand_macros(substitute_variables(target["rawSql"], values), time_from, time_to)
                except (KeyError, ValueError) as error:
                    problems.append(f"{where}: query {target.get('refId')}: {error}")
                    continue
                rows = run(connection, sql, where, problems)
                queries += 1
                if rows is not None and not rows:
                    problems.append(f"{where}: no rows for {time_from:%Y-%m-%d} to {time_to:%Y-%m-%d}")
                elif rows is not None:
                    print(f"grafana check: {where}: {len(rows)} rows")
    return len(seen_uids), queries


def run(connection, sql, where, problems):
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    except psycopg2.Error as error:
        connection.rollback()
        problems.append(f"{where}: {str(error).strip()}\n    {sql}")
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="libpq connection string of a database with guildstats")
    parser.add_argument("--from", dest="time_from", default="2026-01-01T00:00:00+00:00")
    parser.add_argument("--to", dest="time_to", default="2026-06-01T00:00:00+00:00")
    args = parser.parse_args()
    time_from = datetime.fromisoformat(args.time_from)
    time_to = datetime.fromisoformat(args.time_to)
    problems = []
    try:
        uids = check_datasources(problems)
        check_providers(problems)
        connection = psycopg2.connect(args.dsn)
        connection.autocommit = True
        dashboards, queries = check_dashboards(uids, connection, time_from, time_to, problems)
    except (OSError, yaml.YAMLError, json.JSONDecodeError, psycopg2.Error) as error:
        problems.append(str(error))
        dashboards = queries = 0
    if problems:
        print("grafana check FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        sys.exit(1)
    print(f"grafana check: {dashboards} dashboards, {queries} panel queries, each with rows")


if __name__ == "__main__":
    main()
