#!/usr/bin/env bash
# Set up everything hallctl needs on a Debian 12 machine: the Debian packages the
# demo and the tests use (installed only when missing), a virtualenv in .venv and
# the Python dependencies. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  python3-venv python3-dev gcc            # venv; pyscard builds from source
  libpcsclite-dev swig pcscd vsmartcard-vpcd  # PC/SC badge readers (real pcscd + virtual reader in tests)
  mosquitto mosquitto-clients             # the embedded broker (a child of the daemon), tests, bridging docs
  chromium                                # page tests (headless)
  zbar-tools                              # tests decode printed QR codes
  fonts-noto-cjk                          # the ticket simulator and the pages render Chinese
  postgresql                              # hallctl central (the city's database) and its tests (initdb in a temp dir)
)

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js and npm run the Node-RED example's MQTT calls (mqtt.js) in tests/integrations.
# Only when missing: a NodeSource nodejs already brings npm and conflicts with Debian's npm.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup: installing Debian packages: nodejs npm"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.hallctl-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python dependencies"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

# mqtt.js for the Node-RED example test, pinned by tests/integrations/package-lock.json.
if [ ! -d tests/integrations/node_modules ] || [ tests/integrations/package-lock.json -nt tests/integrations/node_modules ]; then
  echo "setup: installing tests/integrations npm packages"
  (cd tests/integrations && npm ci --no-audit --no-fund --loglevel=error)
  touch tests/integrations/node_modules
fi
