#!/usr/bin/env bash
# The builder stage of docker/db/Dockerfile: install what scripts/lib.sh installs, then package
# the extension with it, so Docker and a host build follow one list of steps.
#   docker/db/package-extension.sh OUT_DIR
source "$(dirname "$0")/../../scripts/lib.sh"
gs_ensure_system_packages
gs_ensure_cargo_pgrx
gs_package_extension "${1:?usage: package-extension.sh OUT_DIR}"
