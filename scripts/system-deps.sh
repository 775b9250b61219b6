#!/usr/bin/env bash
# Debian packages the tests need: a PostgreSQL server (the tests start their own cluster) and a
# Java runtime for Apache Spark in local mode, and Chromium for the browser tests (driven by
# Playwright with executable_path=/usr/bin/chromium; no browser is ever downloaded), and wrk for
# the checks benchmark.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
# a CJK font so credit reports print Chinese names (reports say so when it is missing)
[ -f /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf ] || need+=(fonts-droid-fallback)
# the HTTP load generator of benchmarks/checks.py
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
