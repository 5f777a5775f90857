# Superset settings for docker/compose.yaml: secrets from files, metadata in SQLite on the
# superset-home volume (one admin, a handful of dashboards: no separate database needed).
import os


def _first_line(env):
    with open(os.environ[env], encoding="utf-8") as f:
        return f.readline().strip()


SECRET_KEY = _first_line("SUPERSET_SECRET_KEY_FILE")
SQLALCHEMY_DATABASE_URI = "sqlite:////app/superset_home/superset.db?check_same_thread=false"
