#!/usr/bin/env bash
# Install the Debian/Ubuntu packages the lab cluster needs (idempotent).
set -euo pipefail
# shellcheck source=slurm/lib.sh
source "$(dirname "$0")/lib.sh"
need_root

PKGS=(slurm-wlm slurmdbd munge mariadb-server)

bash "$(dirname "$0")/../scripts/apt-install.sh" "${PKGS[@]}"
say "packages installed: ${PKGS[*]}"
