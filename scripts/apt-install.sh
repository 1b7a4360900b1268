#!/usr/bin/env bash
# Install Debian/Ubuntu packages that are missing (idempotent, as root), quietly: apt's output goes to a
# log that is shown only when the install fails.
# Usage: scripts/apt-install.sh PACKAGE...
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
log=$(mktemp /tmp/hpcjobs-apt.XXXXXX.log)
echo "apt-install: installing ${missing[*]} (log: $log)"
if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"; } >"$log" 2>&1; then
  echo "apt-install: installing ${missing[*]} failed; the log follows" >&2
  cat "$log" >&2
  exit 1
fi
