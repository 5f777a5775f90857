#!/usr/bin/env python3
"""The dashboards in a real Superset and a real browser (run by scripts/test).

    test_superset.py --pg-host DIR --pg-port PORT --db NAME --login LOGIN [--screenshots DIR]

Against a database loaded like the demo's, with LOGIN a member of guildstats_reader:
  1. a fresh Superset home with SQLite metadata: `superset db upgrade`, an admin, `superset init`;
  2. Superset serves on a free local port;
  3. the bundle is built and imported twice through the assets API (import_bundle.py), and the
     number of databases, datasets, charts and dashboards is the same after both;
  4. GET /api/v1/chart/{id}/data/ for every chart: HTTP 200 and at least one row;
  5. Debian's chromium (through Playwright, no browser download) opens every dashboard; an
     error alert or a chart saying it has no results fails the test. Screenshots go to DIR.
Exits non-zero with a message naming what failed.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build_bundle  # noqa: E402
import import_bundle  # noqa: E402

ADMIN = "admin"
ADMIN_PASSWORD = "guildstats-test-admin"
DB_PASSWORD = "guildstats-test-reader"
CHROMIUM = "/usr/bin/chromium"


class Failure(Exception):
    pass


def log(message):
    print(f"superset test: {message}", flush=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def superset_env(home):
    env = dict(os.environ)
    env.update(
        {
            "SUPERSET_HOME": str(home),
            "SUPERSET_CONFIG_PATH": str(home / "superset_config.py"),
            "FLASK_APP": "superset",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def write_config(home):
    (home / "superset_config.py").write_text(
        "\n".join(
            [
                "# Written by bi/superset/test_superset.py for one test run.",
                f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{home / 'superset.db'}'",
                "SECRET_KEY = 'guildstats-test-only-not-a-secret'",
                # Local http only: no HTTPS redirects or CSP in the way of the test browser.
                "TALISMAN_ENABLED = False",
                "SUPERSET_WEBSERVER_TIMEOUT = 120",
                "SQLLAB_TIMEOUT = 120",
                "",
            ]
        )
    )


def run(command, env, what):
    started = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise Failure(f"{what} failed ({' '.join(command)}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    log(f"{what}: {time.monotonic() - started:.0f} s")


def start_superset(venv_bin, env, port, log_path):
    handle = open(log_path, "w")
    process = subprocess.Popen(
        [str(venv_bin / "superset"), "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Failure(f"superset run exited with {process.returncode}: see {log_path}")
        try:
            if requests.get(f"{url}/health", timeout=5).status_code == 200:
                return process, url
        except requests.RequestException:
            pass
        time.sleep(1)
    process.terminate()
    raise Failure(f"Superset did not answer on {url}/health within 180 s: see {log_path}")


def object_counts(session, url):
    counts = {}
    for kind in ("database", "dataset", "chart", "dashboard"):
        response = session.get(f"{url}/api/v1/{kind}/", params={"q": "(page_size:100)"}, timeout=60)
        if response.status_code != 200:
            raise Failure(f"GET /api/v1/{kind}/: HTTP {response.status_code} {response.text[:500]}")
        counts[kind] = response.json()["count"]
    return counts


def expected_counts():
    datasets, _, dashboards = build_bundle.load_sources()
    return {
        "database": 1,
        "dataset": len(datasets["datasets"]),
        "chart": sum(len(d["charts"]) for d in dashboards),
        "dashboard": len(dashboards),
    }


def et_chart_titles():
    _, _, dashboards = build_bundle.load_sources()
    return {c["title"] for d in dashboards for c in d["charts"] if c["dataset"].startswith("et_")}


def check_chart_data(session, url, no_et):
    response = session.get(f"{url}/api/v1/chart/", params={"q": "(page_size:100,columns:!(id,slice_name))"}, timeout=60)
    charts = response.json()["result"]
    problems = []
    for chart in sorted(charts, key=lambda c: c["id"]):
        started = time.monotonic()
        data = session.get(f"{url}/api/v1/chart/{chart['id']}/data/", timeout=300)
        took = time.monotonic() - started
        if data.status_code != 200:
            problems.append(f"{chart['slice_name']}: HTTP {data.status_code} {data.text[:400]}")
            continue
        rows = sum(len(result.get("data") or []) for result in data.json()["result"])
        log(f"chart data {chart['slice_name']!r}: {rows} rows, {took * 1000:.0f} ms")
        if rows < 1 and not (no_et and chart["slice_name"] in et_chart_titles()):
            problems.append(f"{chart['slice_name']}: no rows")
    if problems:
        raise Failure("chart data:\n  " + "\n  ".join(problems))
    return len(charts)


def check_in_browser(url, screenshots, no_et):
    from playwright.sync_api import sync_playwright

    _, _, dashboards = build_bundle.load_sources()
    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{url}/login/", wait_until="networkidle")
        page.fill("input#username, input[name=username]", ADMIN)
        page.fill("input#password, input[name=password]", ADMIN_PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda u: "/login" not in u, timeout=60000)
        for dashboard in dashboards:
            expected = len(dashboard["charts"])
            page.goto(f"{url}/superset/dashboard/{dashboard['slug']}/", wait_until="networkidle", timeout=180000)
            holders = page.locator(".dashboard-chart-id-1, [data-test='chart-grid-component']")
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                loading = page.locator(".dashboard-component-chart-holder .loading, [data-test='loading-indicator']").count()
                if holders.count() >= expected and loading == 0:
                    break
                time.sleep(1)
            page.wait_for_timeout(1500)
            shown = page.locator("[data-test='chart-grid-component']").count()
            # Anywhere on the page: a chart's error and the filter bar's ("Oops! An error
            # occurred!") both count.
            errors = page.locator(
                ".ant-alert-error, .alert-danger, [data-test='chart-grid-component'] [role='alert'], "
                ":text('An error occurred')"
            )
            empty = page.get_by_text("No results were returned for this query")
            if screenshots:
                page.screenshot(path=str(Path(screenshots) / f"superset-{dashboard['slug']}.png"), full_page=True)
            title = dashboard["title"]
            if shown != expected:
                problems.append(f"{title}: {shown} charts shown, {expected} expected")
            if errors.count():
                problems.append(f"{title}: error alert: {errors.first.inner_text()[:300]!r}")
            if empty.count() and not (no_et and dashboard["slug"] == "guildstats-et"):
                problems.append(f"{title}: {empty.count()} charts without results")
            log(f"browser {title!r}: {shown} charts, {errors.count()} errors, {empty.count()} empty")
        browser.close()
    if problems:
        raise Failure("browser:\n  " + "\n  ".join(problems))


def initialise(venv_bin, env):
    run([str(venv_bin / "superset"), "db", "upgrade"], env, "superset db upgrade")
    run(
        [str(venv_bin / "superset"), "fab", "create-admin", "--username", ADMIN, "--firstname", "Guild",
         "--lastname", "Admin", "--email", "admin@example.org", "--password", ADMIN_PASSWORD],
        env,
        "superset fab create-admin",
    )
    run([str(venv_bin / "superset"), "init"], env, "superset init")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-host", required=True)
    parser.add_argument("--pg-port", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--login", required=True)
    parser.add_argument("--screenshots")
    parser.add_argument("--no-et", action="store_true", help="the database has no ET:Legacy rounds: ET charts may be empty")
    parser.add_argument("--keep", action="store_true", help="keep the Superset home and leave it running")
    parser.add_argument("--home", help="with --keep before: reuse that Superset home (skips db upgrade and init)")
    args = parser.parse_args()
    venv_bin = Path(sys.executable).parent
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="guildstats-superset-"))
    process = None
    try:
        dsn = f"host={args.pg_host} port={args.pg_port} dbname={args.db} user=postgres"
        _, committed, _ = build_bundle.load_sources()
        if build_bundle.mart_columns(dsn) != committed:
            raise Failure("bi/superset/src/columns.yaml differs from the mart: run build_bundle.py --write-columns")
        write_config(home)
        env = superset_env(home)
        if not args.home:
            initialise(venv_bin, env)
        port = free_port()
        process, url = start_superset(venv_bin, env, port, home / "superset.log")
        log(f"Superset at {url} (home {home})")

        bundle = home / "guildstats-superset.zip"
        uri = f"postgresql://{args.login}@/{args.db}?host={args.pg_host}&port={args.pg_port}"
        build_bundle.build(str(bundle), uri)
        session = import_bundle.session_for(url, ADMIN, ADMIN_PASSWORD)
        import_bundle.import_bundle(session, url, str(bundle), DB_PASSWORD)
        first = object_counts(session, url)
        import_bundle.import_bundle(session, url, str(bundle), DB_PASSWORD)
        second = object_counts(session, url)
        log(f"objects after the first import {first}, after the second {second}")
        if first != second:
            raise Failure(f"a second import changed the object counts: {first} -> {second}")
        if first != expected_counts():
            raise Failure(f"objects in Superset {first}, in the bundle {expected_counts()}")

        charts = check_chart_data(session, url, args.no_et)
        log(f"every chart's data: {charts} charts, each with rows")
        check_in_browser(url, args.screenshots, args.no_et)
        log("every dashboard opened in chromium without an error or an empty chart")
    except (Failure, build_bundle.SourceError, import_bundle.BundleImportError) as failure:
        print(f"superset test FAILED: {failure}", file=sys.stderr)
        log_file = home / "superset.log"
        if log_file.exists():
            print(f"--- last lines of {log_file}:\n{log_file.read_text()[-4000:]}", file=sys.stderr)
        sys.exit(1)
    finally:
        if process is not None and not args.keep:
            process.terminate()
            process.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
