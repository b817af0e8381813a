#!/usr/bin/env bash
# Runs ipfs/gateway-conformance's trustless specs against a ddc node with
# the suite's fixtures imported, and prints the pass count per spec.
#
#   integration/conformance/run.sh [SUITE_GIT_DIR_OR_URL]
#
# SUITE defaults to https://github.com/ipfs/gateway-conformance; it is
# checked out at $GWC_REF (the commit the figures in docs/benchmarks.md
# were taken at) and built with the Go toolchain (the suite runs `go test`
# on its own sources, so it needs them). Work goes to $WORK (a temp dir).
# Exit status: 0 when every case of the three specs passes, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$(pwd)
suite=${1:-https://github.com/ipfs/gateway-conformance}
GWC_REF=${GWC_REF:-22c76440}
SPECS=${SPECS:-trustless-block-gateway,trustless-car-gateway,trustless-car-gateway-optional}
WORK=${WORK:-$(mktemp -d /tmp/ddc-conformance.XXXXXX)}
mkdir -p "$WORK"
echo "work in $WORK"

go build -o "$WORK/ddc" ./cmd/ddc
if [ ! -d "$WORK/gwc" ]; then
	git clone -q "$suite" "$WORK/gwc"
fi
git -C "$WORK/gwc" checkout -q "$GWC_REF"
(cd "$WORK/gwc" && go build -o "$WORK/gateway-conformance" ./cmd/gateway-conformance)

ddc() { "$WORK/ddc" --repo "$WORK/repo" "$@"; }
rm -rf "$WORK/repo"
ddc init >/dev/null
# The binary itself, not the function: $! must be the daemon's PID.
"$WORK/ddc" --repo "$WORK/repo" node run --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 --gateway 127.0.0.1:0 \
	--no-mdns --log-level warn >"$WORK/node.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT # no daemon outlives the run
gw=""
for _ in $(seq 1 300); do # the node writes node.json once it serves
	if [ -f "$WORK/repo/node.json" ]; then
		gw=$(sed -n 's/.*"gateway": *"\([^"]*\)".*/\1/p' "$WORK/repo/node.json")
		[ -n "$gw" ] && break
	fi
	kill -0 $pid || { cat "$WORK/node.log" >&2; exit 1; }
	sleep 0.1
done
[ -n "$gw" ] || { echo "node not ready in 30 s" >&2; exit 1; }
n=0
# The fixtures the trustless specs read (tests/trustless_gateway_*_test.go).
for f in "$WORK"/gwc/fixtures/gateway-raw-block.car "$WORK"/gwc/fixtures/trustless_gateway_car/*.car; do
	ddc import "$f" >/dev/null || { echo "import $f refused" >&2; exit 1; }
	n=$((n + 1))
done
echo "imported $n fixture CARs; gateway http://$gw"

set +e
(cd "$WORK/gwc" && "$WORK/gateway-conformance" test --gateway-url "http://$gw" \
	--specs "$SPECS" --json "$WORK/report.json" -- -timeout 5m >"$WORK/suite.log" 2>&1)
set -e
go run ./integration/conformance/summary "$WORK/report.json"
