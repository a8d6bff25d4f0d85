#!/usr/bin/env bash
# The README's test command. Installs what a fresh Debian machine lacks
# (PostgreSQL server, Chromium, CJK fonts, poppler-utils and playwright-core
# for the browser tests,
# schemathesis in a venv for the API contract test),
# starts a throwaway PostgreSQL cluster, then runs the whole Rust test suite.
# Models, the ONNX Runtime library and the fixtures are fetched by the tests
# themselves on first use (crates/assets), into ~/.cache/facegate.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

need_apt=()
command -v pg_ctlcluster >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need_apt+=(fonts-noto-cjk)
# pdftotext / pdfinfo read back the PDFs Chromium prints (documents test).
command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  echo "installing: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# playwright-core drives Debian's Chromium (no browser download).
if [ -f tests/e2e/package.json ] && { [ ! -d tests/e2e/node_modules/playwright-core ] || [ ! -d tests/e2e/node_modules/axe-core ]; }; then
  (cd tests/e2e && npm ci --no-audit --no-fund --silent 2>/dev/null || npm install --no-audit --no-fund --silent)
fi

# A private PostgreSQL cluster on a Unix socket, owned by an unprivileged user.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -n "$pg_bin" ] && [ -z "${FACEGATE_TEST_DATABASE_URL:-}" ]; then
  pgdir=$(mktemp -d /tmp/facegate-pg.XXXXXX)
  chmod 755 "$pgdir"
  if [ "$(id -u)" = 0 ]; then AS="runuser -u postgres --"; chown postgres "$pgdir"; else AS=; fi
  $AS "$pg_bin/initdb" -D "$pgdir/data" -U facegate --auth=trust >/dev/null
  $AS "$pg_bin/pg_ctl" -D "$pgdir/data" -o "-k $pgdir -c listen_addresses='' -c fsync=off" -l "$pgdir/log" -w start >/dev/null
  trap '$AS "$pg_bin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT
  $AS "$pg_bin/createdb" -h "$pgdir" -U facegate facegate_test
  export FACEGATE_TEST_DATABASE_URL="postgres://facegate@localhost/facegate_test?host=$pgdir"
  echo "PostgreSQL test server: $FACEGATE_TEST_DATABASE_URL"
fi

# schemathesis (pinned in tests/schemathesis/requirements.txt) in a venv of
# its own, for the contract test that runs it against `facegate serve`
# (crates/cli/tests/schemathesis.rs). Without Python the test skips and says so.
st_venv="$root/tests/schemathesis/.venv"
if [ -z "${FACEGATE_SCHEMATHESIS:-}" ] && command -v python3 >/dev/null 2>&1; then
  want=$(grep -v '^#' tests/schemathesis/requirements.txt | tr -d '[:space:]')
  if ! "$st_venv/bin/pip" freeze 2>/dev/null | grep -qx "$want"; then
    echo "installing $want into $st_venv"
    python3 -m venv "$st_venv" && "$st_venv/bin/pip" install -q -r tests/schemathesis/requirements.txt ||
      echo "could not install schemathesis: the schemathesis test will skip"
  fi
  [ -x "$st_venv/bin/st" ] && export FACEGATE_SCHEMATHESIS="$st_venv/bin/st"
fi

export FACEGATE_CHROMIUM="${FACEGATE_CHROMIUM:-$(command -v chromium || true)}"
export FACEGATE_E2E_DIR="$root/tests/e2e"
# Every test binary runs even after one fails, so one CI run names every failure.
cargo test --workspace --no-fail-fast "$@"
