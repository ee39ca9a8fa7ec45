#!/usr/bin/env bash
# Lint Vigie's API contract with buf (config: buf.yaml at the repository root).
#
# 1. Install buf from the npm registry (@bufbuild/buf, pinned) into build/buf/ if absent.
# 2. Stage the google/api, google/type and google/rpc protos that proto/ imports from the
#    googleapis-common-protos wheel into build/third_party/ (no BSR access needed).
# 3. Run `buf lint` (STANDARD rules; exceptions and their reasons are in buf.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION="${BUF_VERSION:-1.75.0}"
PYTHON="${PYTHON:-.venv/bin/python}"
BUF="build/buf/node_modules/.bin/buf"

if [[ ! -x "$BUF" ]] || [[ "$("$BUF" --version)" != "$BUF_VERSION" ]]; then
  mkdir -p build/buf
  npm install --prefix build/buf --no-save --no-audit --no-fund --silent "@bufbuild/buf@${BUF_VERSION}"
fi

"$PYTHON" scripts/gen_proto.py --third-party build/third_party >/dev/null
"$BUF" lint "$@"
echo "buf lint: proto/ is clean"
