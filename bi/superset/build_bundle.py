#!/usr/bin/env python3
"""Builds the Superset asset bundle (the ZIP that POST /api/v1/assets/import/ takes) from the
YAML sources in bi/superset/src.

    build_bundle.py OUT.zip [--db-uri URI]
    build_bundle.py --write-columns DSN     # refresh src/columns.yaml from a database

The sources say what each chart shows in a few keys (viz, dataset, metrics, grain, groupby,
...); this script spells that out as Superset's form data (`params`) and the `query_context`
that GET /api/v1/chart/{id}/data/ runs. Every object keeps the UUID written in the sources, so
importing a newer bundle updates the same objects.

The database URI carries no password: Superset asks for it at import (import_bundle.py passes
it from the environment). Its default suits a Superset next to the database; override it with
--db-uri or GUILDSTATS_SUPERSET_DB_URI (for example postgresql://superset@db.internal/guildstats).
"""

import argparse
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import yaml

SRC = Path(__file__).resolve().parent / "src"
DEFAULT_URI = "postgresql://superset@localhost:5432/guildstats"
BUNDLE_ROOT = "guildstats_bundle"
TIME_TYPES = ("DATE", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITHOUT TIME ZONE")
VIZ = {
    "line": "echarts_timeseries_line",
    "bar": "echarts_timeseries_bar",
    "big_number": "big_number",
    "big_number_total": "big_number_total",
    "table": "table",
    "pie": "pie",
    "heatmap": "heatmap_v2",
}

CHART_KEYS = {
    "uuid", "title", "description", "viz", "dataset", "metrics", "metric", "grain", "groupby",
    "columns", "x", "y", "filters", "order", "ascending", "limit", "stack", "compare_lag",
    "width", "height",
}


class SourceError(Exception):
    """A mistake in the YAML sources, named with the file and the object."""


def load_sources():
    datasets = yaml.safe_load((SRC / "datasets.yaml").read_text())
    columns = yaml.safe_load((SRC / "columns.yaml").read_text())
    dashboards = []
    for path in sorted((SRC / "dashboards").glob("*.yaml")):
        dashboard = yaml.safe_load(path.read_text())
        dashboard["file"] = path.name
        dashboards.append(dashboard)
    return datasets, columns, dashboards


def with_password_placeholder(uri):
    # Superset keeps a password out of an export by writing this mask; at import the
    # `passwords` field replaces it.
    scheme, rest = uri.split("://", 1)
    if "@" not in rest:
        raise SourceError(f"database URI {uri!r}: name the login, e.g. postgresql://superset@host/db")
    user, host = rest.split("@", 1)
    user = user.split(":", 1)[0]
    return f"{scheme}://{user}:XXXXXXXXXX@{host}"


def database_yaml(spec, uri):
    return {
        "database_name": spec["name"],
        "sqlalchemy_uri": with_password_placeholder(uri),
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_csv_upload": False,
        "extra": {"allows_virtual_table_explore": True},
        "uuid": spec["uuid"],
        "version": "1.0.0",
    }


def dataset_yaml(name, spec, columns, database_uuid):
    if name not in columns:
        raise SourceError(f"datasets.yaml: {name}: no columns in columns.yaml (run --write-columns)")
    time_column = spec.get("time")
    names = [c[0] for c in columns[name]]
    if time_column and time_column not in names:
        raise SourceError(f"datasets.yaml: {name}: time column {time_column} is not a column")
    return {
        "table_name": name,
        "main_dttm_col": time_column,
        "description": None,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "schema": "guildstats_mart",
        "catalog": None,
        "sql": None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "uuid": spec["uuid"],
        "metrics": [
            {
                "metric_name": metric,
                "verbose_name": m.get("label", metric),
                "metric_type": None,
                "expression": m["sql"],
                "description": None,
                "d3format": m.get("format"),
                "extra": None,
                "warning_text": None,
            }
            for metric, m in spec.get("metrics", {}).items()
        ],
        "columns": [
            {
                "column_name": column,
                "verbose_name": None,
                "is_dttm": sql_type in TIME_TYPES,
                "is_active": True,
                "type": sql_type,
                "groupby": True,
                "filterable": True,
                "expression": None,
                "description": None,
                "python_date_format": None,
                "extra": None,
            }
            for column, sql_type in columns[name]
        ]
        + guild_column(names),
        "version": "1.0.0",
        "database_uuid": database_uuid,
    }


def guild_column(names):
    """The guild filter's column: guild_id as text. Snowflakes are larger than JavaScript's
    safe integers, and Superset's filter bar fails on them ("Do not know how to serialize a
    BigInt"); every dataset gets the same calculated column, so one filter reaches every chart."""
    if "guild_id" not in names:
        return []
    return [
        {
            "column_name": "guild",
            "verbose_name": "Guild",
            "is_dttm": False,
            "is_active": True,
            "type": "TEXT",
            "groupby": True,
            "filterable": True,
            "expression": "guild_id::text",
            "description": "Discord guild id, as text.",
            "python_date_format": None,
            "extra": None,
        }
    ]


def temporal_filter(column):
    return {
        "clause": "WHERE",
        "comparator": "No filter",
        "expressionType": "SIMPLE",
        "operator": "TEMPORAL_RANGE",
        "subject": column,
    }


def equality_filter(column, value):
    return {
        "clause": "WHERE",
        "comparator": value,
        "expressionType": "SIMPLE",
        "operator": "==",
        "subject": column,
    }


def chart_objects(chart, dataset_name, dataset_spec, dataset_columns, where):
    """The chart's form data and the query that form data stands for."""
    viz = chart["viz"]
    unknown = set(chart) - CHART_KEYS
    if unknown:
        raise SourceError(f"{where}: unknown keys {sorted(unknown)} (a comma in an unquoted title?)")
    if viz not in VIZ:
        raise SourceError(f"{where}: unknown viz {viz!r} (one of {', '.join(VIZ)})")
    metrics_known = dataset_spec.get("metrics", {})
    metrics = chart.get("metrics") or ([chart["metric"]] if "metric" in chart else [])
    for metric in metrics:
        if metric not in metrics_known:
            raise SourceError(f"{where}: dataset {dataset_name} has no metric {metric!r}")
    names = {c[0] for c in dataset_columns}
    referenced = list(chart.get("groupby", [])) + list(chart.get("columns", []))
    referenced += [chart[k] for k in ("x", "y") if k in chart]
    referenced += [f["col"] for f in chart.get("filters", [])]
    for column in referenced:
        if column not in names:
            raise SourceError(f"{where}: dataset {dataset_name} has no column {column!r}")
    time_column = dataset_spec.get("time")
    adhoc = [temporal_filter(time_column)] if time_column else []
    adhoc += [equality_filter(f["col"], f["val"]) for f in chart.get("filters", [])]
    query_filters = [{"col": time_column, "op": "TEMPORAL_RANGE", "val": "No filter"}] if time_column else []
    query_filters += [{"col": f["col"], "op": "==", "val": f["val"]} for f in chart.get("filters", [])]
    limit = chart.get("limit", 10000)
    descending = not chart.get("ascending", False)
    params = {
        "viz_type": VIZ[viz],
        "adhoc_filters": adhoc,
        "row_limit": limit,
        "time_range": "No filter",
        "extra_form_data": {},
        "dashboards": [],
    }
    query = {
        "filters": query_filters,
        "extras": {"having": "", "where": ""},
        "applied_time_extras": {},
        "annotation_layers": [],
        "row_limit": limit,
        "series_limit": 0,
        "order_desc": descending,
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
        "time_range": "No filter",
    }
    if viz in ("line", "bar", "big_number"):
        grain = chart.get("grain", "P1D")
        axis = {
            "timeGrain": grain,
            "columnType": "BASE_AXIS",
            "sqlExpression": time_column,
            "label": time_column,
            "expressionType": "SQL",
        }
        params.update({"x_axis": time_column, "time_grain_sqla": grain})
        query["extras"]["time_grain_sqla"] = grain
        query["columns"] = [axis] + list(chart.get("groupby", []))
        query["orderby"] = []
        query["metrics"] = metrics
        if viz == "big_number":
            params.update(
                {
                    "metric": metrics[0],
                    "compare_lag": chart.get("compare_lag", 7),
                    "compare_suffix": "vs previous period",
                    "show_trend_line": True,
                    "start_y_axis_at_zero": False,
                    "header_font_size": 0.4,
                    "subheader_font_size": 0.15,
                    "y_axis_format": "SMART_NUMBER",
                    "time_format": "smart_date",
                }
            )
        else:
            params.update(
                {
                    "metrics": metrics,
                    "groupby": chart.get("groupby", []),
                    "order_desc": True,
                    "show_legend": True,
                    "legendOrientation": "top",
                    "rich_tooltip": True,
                    "truncate_metric": True,
                    "x_axis_time_format": "smart_date",
                    "y_axis_format": "SMART_NUMBER",
                    "stack": "Stack" if chart.get("stack") else None,
                    "markerEnabled": False,
                    "seriesType": "line",
                }
            )
    elif viz == "big_number_total":
        params.update({"metric": metrics[0], "header_font_size": 0.4, "y_axis_format": "SMART_NUMBER"})
        query.update({"columns": [], "metrics": metrics, "orderby": []})
    elif viz == "table" and "columns" in chart:
        order = chart.get("order")
        params.update(
            {
                "query_mode": "raw",
                "all_columns": chart["columns"],
                "order_by_cols": [json.dumps([order, not descending])] if order else [],
                "server_pagination": False,
                "table_timestamp_format": "smart_date",
            }
        )
        query.update(
            {
                "columns": chart["columns"],
                "metrics": [],
                "orderby": [[order, not descending]] if order else [],
            }
        )
    elif viz == "table":
        order = chart.get("order")
        params.update(
            {
                "query_mode": "aggregate",
                "groupby": chart["groupby"],
                "metrics": metrics,
                "timeseries_limit_metric": order if order in metrics else None,
                "order_desc": descending,
                "server_pagination": False,
                "table_timestamp_format": "smart_date",
            }
        )
        if order and order not in metrics:
            params["order_by_cols"] = [json.dumps([order, not descending])]
        query.update(
            {
                "columns": chart["groupby"],
                "metrics": metrics,
                "orderby": [[order, not descending]] if order else [],
            }
        )
    elif viz == "pie":
        params.update(
            {
                "groupby": chart["groupby"],
                "metric": metrics[0],
                "show_labels": True,
                "show_legend": True,
                "label_type": "key_percent",
                "number_format": "SMART_NUMBER",
                "sort_by_metric": True,
            }
        )
        query.update({"columns": chart["groupby"], "metrics": metrics, "orderby": [[metrics[0], False]]})
    elif viz == "heatmap":
        params.update(
            {
                "x_axis": chart["x"],
                "groupby": chart["y"],
                "metric": metrics[0],
                "linear_color_scheme": "blue_white_yellow",
                "normalize_across": "heatmap",
                "show_legend": True,
                "show_values": False,
                "sort_x_axis": "alpha_asc",
                "sort_y_axis": "alpha_asc",
                "value_bounds": [None, None],
                "y_axis_format": "SMART_NUMBER",
            }
        )
        query.update(
            {
                "columns": [
                    {
                        "columnType": "BASE_AXIS",
                        "sqlExpression": chart["x"],
                        "label": chart["x"],
                        "expressionType": "SQL",
                    },
                    chart["y"],
                ],
                "metrics": metrics,
                "orderby": [[metrics[0], False]],
            }
        )
    return params, query


def chart_yaml(chart, datasets, columns, where):
    name = chart["dataset"]
    if name not in datasets["datasets"]:
        raise SourceError(f"{where}: unknown dataset {name!r}")
    spec = datasets["datasets"][name]
    params, query = chart_objects(chart, name, spec, columns[name], where)
    # The datasource id is a placeholder: the importer writes the real one.
    params["datasource"] = "1__table"
    query_context = {
        "datasource": {"id": 1, "type": "table"},
        "force": False,
        "queries": [query],
        "form_data": params,
        "result_format": "json",
        "result_type": "full",
    }
    return {
        "slice_name": chart["title"],
        "description": chart.get("description"),
        "certified_by": None,
        "certification_details": None,
        "viz_type": VIZ[chart["viz"]],
        "params": params,
        "query_context": json.dumps(query_context, sort_keys=True),
        "cache_timeout": None,
        "uuid": chart["uuid"],
        "version": "1.0.0",
        "dataset_uuid": spec["uuid"],
    }


def native_filters(dashboard, datasets):
    """A guild filter (single choice, first guild by default) and a time-range filter."""
    guilds = datasets["datasets"]["guilds"]["uuid"]
    slug = dashboard["slug"]
    scope = {"rootPath": ["ROOT_ID"], "excluded": []}
    return [
        {
            "id": f"NATIVE_FILTER-{slug}-guild",
            "name": "Guild",
            "filterType": "filter_select",
            "type": "NATIVE_FILTER",
            "targets": [{"column": {"name": "guild"}, "datasetUuid": guilds}],
            "controlValues": {
                "enableEmptyFilter": False,
                "defaultToFirstItem": True,
                "multiSelect": False,
                "searchAllOptions": False,
                "inverseSelection": False,
            },
            "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
            "cascadeParentIds": [],
            "scope": scope,
            "description": "The Discord guild every chart shows.",
        },
        {
            "id": f"NATIVE_FILTER-{slug}-time",
            "name": "Time range",
            "filterType": "filter_time",
            "type": "NATIVE_FILTER",
            "targets": [{}],
            "controlValues": {"enableEmptyFilter": False},
            "defaultDataMask": {
                "extraFormData": {"time_range": "No filter"},
                "filterState": {"value": "No filter"},
            },
            "cascadeParentIds": [],
            "scope": scope,
            "description": "The period every chart covers.",
        },
    ]


def dashboard_yaml(dashboard, datasets):
    position = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": dashboard["title"]}},
    }
    rows, width = [], 12
    for number, chart in enumerate(dashboard["charts"], start=1):
        chart_width = chart.get("width", 6)
        if width + chart_width > 12:
            rows.append([])
            width = 0
        width += chart_width
        row_id = f"ROW-{len(rows)}"
        chart_id = f"CHART-{number}"
        rows[-1].append(chart_id)
        position[chart_id] = {
            "type": "CHART",
            "id": chart_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID", row_id],
            "meta": {
                "width": chart_width,
                "height": chart.get("height", 50 if chart["viz"] != "big_number" else 36),
                "chartId": number,
                "uuid": chart["uuid"],
                "sliceName": chart["title"],
            },
        }
    for index, children in enumerate(rows, start=1):
        row_id = f"ROW-{index}"
        for chart_id in children:
            position[chart_id]["parents"][2] = row_id
        position[row_id] = {
            "type": "ROW",
            "id": row_id,
            "children": children,
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        position["GRID_ID"]["children"].append(row_id)
    return {
        "dashboard_title": dashboard["title"],
        "description": None,
        "css": "",
        "slug": dashboard["slug"],
        "uuid": dashboard["uuid"],
        "position": position,
        "metadata": {
            "native_filter_configuration": native_filters(dashboard, datasets),
            "timed_refresh_immune_slices": [],
            "expanded_slices": {},
            "refresh_frequency": 0,
            "color_scheme": "supersetColors",
            "cross_filters_enabled": False,
        },
        "version": "1.0.0",
        "published": True,
    }


def check_unique_uuids(datasets, dashboards):
    seen = {}
    items = [("database", datasets["database"]["uuid"])]
    items += [(f"dataset {n}", d["uuid"]) for n, d in datasets["datasets"].items()]
    for dashboard in dashboards:
        items.append((f"{dashboard['file']}: dashboard", dashboard["uuid"]))
        items += [(f"{dashboard['file']}: chart {c['title']!r}", c["uuid"]) for c in dashboard["charts"]]
    for what, uuid in items:
        if uuid in seen:
            raise SourceError(f"{what} reuses the UUID {uuid} of {seen[uuid]}")
        seen[uuid] = what


def build(out, uri):
    datasets, columns, dashboards = load_sources()
    check_unique_uuids(datasets, dashboards)
    files = {"metadata.yaml": {"version": "1.0.0", "type": "assets", "timestamp": "2026-01-01T00:00:00+00:00"}}
    database = datasets["database"]
    files[f"databases/{database['name']}.yaml"] = database_yaml(database, uri)
    for name, spec in datasets["datasets"].items():
        files[f"datasets/{database['name']}/{name}.yaml"] = dataset_yaml(name, spec, columns, database["uuid"])
    for dashboard in dashboards:
        for chart in dashboard["charts"]:
            where = f"{dashboard['file']}: chart {chart['title']!r}"
            files[f"charts/{chart['uuid']}.yaml"] = chart_yaml(chart, datasets, columns, where)
        files[f"dashboards/{dashboard['slug']}.yaml"] = dashboard_yaml(dashboard, datasets)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in sorted(files.items()):
            # A fixed date keeps the ZIP byte-for-byte the same for the same sources.
            info = zipfile.ZipInfo(f"{BUNDLE_ROOT}/{name}", date_time=(2026, 1, 1, 0, 0, 0))
            bundle.writestr(info, yaml.safe_dump(content, sort_keys=True, allow_unicode=True))
    Path(out).write_bytes(buffer.getvalue())
    charts = sum(len(d["charts"]) for d in dashboards)
    print(f"{out}: {len(dashboards)} dashboards, {charts} charts, {len(datasets['datasets'])} datasets")


def mart_columns(dsn):
    """The columns of the guildstats_mart views the datasets use, as in the database."""
    import psycopg2

    datasets = yaml.safe_load((SRC / "datasets.yaml").read_text())
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(
            """SELECT table_name, column_name, upper(data_type) FROM information_schema.columns
               WHERE table_schema = 'guildstats_mart' ORDER BY table_name, ordinal_position"""
        )
        found = {}
        for table, column, sql_type in cursor.fetchall():
            found.setdefault(table, []).append([column, sql_type])
    missing = [name for name in datasets["datasets"] if name not in found]
    if missing:
        raise SourceError(f"views missing from guildstats_mart: {', '.join(missing)}")
    return {name: found[name] for name in datasets["datasets"]}


def write_columns(dsn):
    columns = mart_columns(dsn)
    header = "# Columns of the guildstats_mart views the datasets use (build_bundle.py --write-columns).\n"
    (SRC / "columns.yaml").write_text(header + yaml.safe_dump(columns, sort_keys=True, default_flow_style=None))
    print(f"{SRC / 'columns.yaml'}: {len(columns)} views")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", help="the ZIP to write")
    parser.add_argument("--db-uri", default=os.environ.get("GUILDSTATS_SUPERSET_DB_URI", DEFAULT_URI))
    parser.add_argument("--write-columns", metavar="DSN")
    args = parser.parse_args()
    try:
        if args.write_columns:
            write_columns(args.write_columns)
        elif args.out:
            build(args.out, args.db_uri)
        else:
            parser.error("give OUT.zip or --write-columns DSN")
    except (SourceError, KeyError, OSError, yaml.YAMLError) as error:
        print(f"build_bundle: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
