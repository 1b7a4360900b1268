#!/usr/bin/env bash
# Install the Debian/Ubuntu packages the lab cluster needs (idempotent).
set -euo pipefail
# shellcheck source=slurm/lib.sh
source "$(dirname "$0")/lib.sh"
need_root

PKGS=(slurm-wlm slurmdbd munge mariadb-server)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  say "packages already installed: ${PKGS[*]}"
  exit 0
fi

say "installing: ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y "${PKGS[@]}"
