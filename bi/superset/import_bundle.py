#!/usr/bin/env python3
"""Imports (or updates) the guildstats dashboards in a running Superset through its assets
API, POST /api/v1/assets/import/: every object is matched by UUID and overwritten, so running
it again changes nothing.

    GUILDSTATS_SUPERSET_DB_PASSWORD=... GUILDSTATS_SUPERSET_PASSWORD=... \\
    import_bundle.py [--url http://localhost:8088] [--user admin] [BUNDLE.zip]

Without BUNDLE.zip it builds one from bi/superset/src first (see build_bundle.py for the
database URI). The passwords come from the environment only:
  GUILDSTATS_SUPERSET_DB_PASSWORD  password of the database login Superset reads with
                                   (a member of guildstats_reader)
  GUILDSTATS_SUPERSET_PASSWORD     password of the Superset user that imports (an admin)
"""

import argparse
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent


class BundleImportError(Exception):
    pass


def session_for(url, user, password):
    """A logged-in API session: a bearer token, plus the CSRF token Superset wants on POST."""
    session = requests.Session()
    response = session.post(
        f"{url}/api/v1/security/login",
        json={"username": user, "password": password, "provider": "db", "refresh": True},
        timeout=60,
    )
    if response.status_code != 200:
        raise BundleImportError(f"login to {url} as {user} failed: HTTP {response.status_code} {response.text[:300]}")
    session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    response = session.get(f"{url}/api/v1/security/csrf_token/", timeout=60)
    if response.status_code != 200:
        raise BundleImportError(f"CSRF token from {url}: HTTP {response.status_code} {response.text[:300]}")
    session.headers["X-CSRFToken"] = response.json()["result"]
    session.headers["Referer"] = url
    return session


def database_file(bundle):
    """The database's path inside the bundle, less its top folder: the key of `passwords`."""
    with zipfile.ZipFile(bundle) as archive:
        inner = [name.split("/", 1)[1] for name in archive.namelist()]
    names = [name for name in inner if name.startswith("databases/")]
    if len(names) != 1:
        raise BundleImportError(f"{bundle}: expected one database in the bundle, found {names}")
    return names[0]


def import_bundle(session, url, bundle, db_password):
    with open(bundle, "rb") as handle:
        response = session.post(
            f"{url}/api/v1/assets/import/",
            files={"bundle": (Path(bundle).name, handle, "application/zip")},
            data={"passwords": json.dumps({database_file(bundle): db_password})},
            timeout=300,
        )
    if response.status_code != 200:
        raise BundleImportError(f"import of {bundle} into {url}: HTTP {response.status_code} {response.text[:2000]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", nargs="?")
    parser.add_argument("--url", default=os.environ.get("GUILDSTATS_SUPERSET_URL", "http://localhost:8088"))
    parser.add_argument("--user", default=os.environ.get("GUILDSTATS_SUPERSET_USER", "admin"))
    args = parser.parse_args()
    missing = [v for v in ("GUILDSTATS_SUPERSET_DB_PASSWORD", "GUILDSTATS_SUPERSET_PASSWORD") if v not in os.environ]
    if missing:
        print(f"import_bundle: set {' and '.join(missing)} in the environment", file=sys.stderr)
        sys.exit(2)
    url = args.url.rstrip("/")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            bundle = args.bundle
            if bundle is None:
                sys.path.insert(0, str(HERE))
                import build_bundle

                bundle = os.path.join(scratch, "guildstats-superset.zip")
                build_bundle.build(bundle, os.environ.get("GUILDSTATS_SUPERSET_DB_URI", build_bundle.DEFAULT_URI))
            session = session_for(url, args.user, os.environ["GUILDSTATS_SUPERSET_PASSWORD"])
            import_bundle(session, url, bundle, os.environ["GUILDSTATS_SUPERSET_DB_PASSWORD"])
    except (BundleImportError, requests.RequestException, OSError) as error:
        print(f"import_bundle: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"imported {bundle or 'the bundle'} into {url}")


if __name__ == "__main__":
    main()
