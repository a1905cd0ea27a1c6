#!/usr/bin/env bash
# Schemathesis over the service's own /openapi.json, against the real process on a loopback port:
# every operation's documented fields generated and mutated, and every answer checked (no 5xx,
# status codes, content types and bodies as documented). By hand (never in CI: it spends a minute
# or more of generated requests); schemathesis lives in a venv of its own.
#
#   bash scripts/fuzz_service.sh [SECONDS]        (default 60; uses .venv's Python for the server)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
venv=${FUZZ_VENV:-.venv-fuzz}
[ -x "$venv/bin/st" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q schemathesis==4.32.5; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/python run.py serve --port "$port" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 1; done
"$venv/bin/st" run "http://127.0.0.1:$port/openapi.json" --max-time "$seconds" --workers 2 \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
