#!/usr/bin/env bash
# benchtools.sh: make sure the programs `make bench-compare` drives are
# installed: wrk (the HTTP load generator of bench/cmd/proxybench).
# As root it installs missing ones with apt-get; otherwise it names the
# packages and fails. SCALEOUT_NO_INSTALL=1 never installs.
set -euo pipefail

pkgs=()
command -v wrk >/dev/null || pkgs+=(wrk)
((${#pkgs[@]} == 0)) && exit 0

if [[ $(id -u) != 0 || ${SCALEOUT_NO_INSTALL:-} == 1 ]]; then
	printf 'benchtools: missing programs; install these Debian/Ubuntu packages:\n' >&2
	printf '    sudo apt-get install -y %s\n' "${pkgs[*]}" >&2
	exit 1
fi
echo "benchtools: installing ${pkgs[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq "${pkgs[@]}"; } </dev/null >"$log" 2>&1; then
	tail -n 50 "$log" >&2
	exit 1
fi
rm -f "$log"
