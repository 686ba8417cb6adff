#!/usr/bin/env bash
# apicheck.sh: the API-compatibility check of `make lint`. It compares the exported API
# of the root module's packages in the working tree (internal/ excluded) with the API at
# the commit named in api/BASELINE, using golang.org/x/exp's apidiff, and fails on an
# incompatible change not listed in api/ACCEPTED. A breaking change is thus a decision
# written down in the commit that makes it: `scripts/apicheck.sh -accept` lists the
# current incompatible changes in api/ACCEPTED, and CHANGELOG.md says what to write
# instead. When a version is tagged, api/BASELINE becomes the tagged commit and
# api/ACCEPTED is emptied.
#
#   scripts/apicheck.sh            check (make lint)
#   scripts/apicheck.sh -accept    write the current incompatible changes to api/ACCEPTED
#   scripts/apicheck.sh -selftest  prove the check catches a removed exported function
#
# The baseline is read with `git archive`, so the clone must hold that commit (a full
# clone does; a shallow one needs `git fetch --unshallow`). apidiff is installed from the
# module cache into a temporary GOBIN: after one fetch the check runs offline.
set -euo pipefail
cd "$(dirname "$0")/.."

APIDIFF=golang.org/x/exp/cmd/apidiff@v0.0.0-20261113113407-e3970619a1a4
mode=${1:-check}
case $mode in
check | -accept | -selftest) ;;
*) echo "usage: scripts/apicheck.sh [-accept | -selftest]" >&2; exit 2 ;;
esac

module=$(go list -m)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp/bin" go install "$APIDIFF"
apidiff="$tmp/bin/apidiff"

# incompatible DIR: the incompatible changes, one a line, of the working tree's API
# against the module's API in DIR (with mode=package, of the root package only), as apidiff words them ("Name: removed" in the root
# package, "./cache.Name: removed" in another). -trimpath lets the build cache serve the
# baseline's packages whatever temporary directory they are in.
incompatible() {
	local m=-m
	[[ ${mode:-} == package ]] && m=
	if ! (cd "$1" && GOFLAGS="${GOFLAGS:-} -trimpath" "$apidiff" $m -w "$tmp/old.export" "$module") 2>"$tmp/err" ||
		! GOFLAGS="${GOFLAGS:-} -trimpath" "$apidiff" $m -incompatible "$tmp/old.export" "$module" >"$tmp/out" 2>>"$tmp/err"; then
		grep -v '^Ignoring internal package' "$tmp/err" >&2
		return 1
	fi
	sed -n 's/^- //p' "$tmp/out"
}

# listed FILE: the lines of FILE that are not comments or blank.
listed() { grep -v -e '^#' -e '^[[:space:]]*$' "$1" || true; }

if [[ $mode == -selftest ]]; then
	# A copy of the root package with one more exported function is the baseline:
	# the working tree "removed" it, which must fail the check. The root package
	# alone (apidiff's package mode) proves the same as the whole module, at a
	# fraction of the cost: the module-wide check is the one that runs below.
	mkdir "$tmp/old"
	cp go.mod go.sum "$tmp/old/"
	git ls-files -z --cached --others --exclude-standard -- '*.go' ':!:*_test.go' ':!:*/*' | while IFS= read -r -d '' f; do
		cp "$f" "$tmp/old/$f"
	done
	printf 'package %s\n\nfunc APICheckSelfTest() {}\n' "$(go list -f '{{.Name}}' .)" >"$tmp/old/apicheck_selftest.go"
	got=$(mode=package incompatible "$tmp/old")
	want="APICheckSelfTest: removed"
	if [[ $got != "$want" ]]; then
		printf 'apicheck -selftest: FAIL: a removed exported function was reported as\n%s\nwant exactly\n%s\n' "${got:-(nothing)}" "$want" >&2
		exit 1
	fi
	echo "apicheck -selftest: ok (a removed exported function is caught: $got)"
	exit 0
fi

base=$(listed api/BASELINE | head -n 1 | tr -d '[:space:]')
if ! git cat-file -e "$base^{commit}" 2>/dev/null; then
	echo "apicheck: api/BASELINE names commit '$base', which this clone does not hold (a shallow clone? git fetch --unshallow)" >&2
	exit 1
fi
mkdir "$tmp/old"
git archive "$base" | tar -x -C "$tmp/old"
got=$(incompatible "$tmp/old")

if [[ $mode == -accept ]]; then
	{
		grep '^#' api/ACCEPTED 2>/dev/null || true
		[[ -n $got ]] && printf '%s\n' "$got"
	} >"$tmp/accepted"
	mv "$tmp/accepted" api/ACCEPTED
	echo "apicheck: api/ACCEPTED lists $(listed api/ACCEPTED | wc -l) incompatible change(s) against $base; say each under **Breaking** in CHANGELOG.md"
	exit 0
fi

new=$(comm -23 <(printf '%s\n' "$got" | sed '/^$/d' | sort) <(listed api/ACCEPTED | sort))
if [[ -n $new ]]; then
	echo "apicheck: incompatible API changes against api/BASELINE ($base) not listed in api/ACCEPTED:" >&2
	printf '  %s\n' "$new" >&2
	echo "If they are meant: scripts/apicheck.sh -accept, and a **Breaking** entry in CHANGELOG.md." >&2
	exit 1
fi
stale=$(comm -13 <(printf '%s\n' "$got" | sed '/^$/d' | sort) <(listed api/ACCEPTED | sort))
if [[ -n $stale ]]; then
	echo "apicheck: note: api/ACCEPTED lists changes that no longer occur (scripts/apicheck.sh -accept drops them):"
	printf '  %s\n' "$stale"
fi
echo "apicheck: ok against $base ($(printf '%s' "$got" | grep -c . || true) accepted incompatible change(s))"
