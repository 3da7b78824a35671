#!/usr/bin/env bash
# System packages the tests need beyond Node: Debian's prometheus (the metrics tests scrape a
# real local cluster with it, and check the configs with promtool). Idempotent; uses sudo when
# not root.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "setup-system: prometheus is missing and this system has no apt-get; install Prometheus 2.x so that 'prometheus' and 'promtool' are on PATH" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
prometheus --version 2>&1 | head -1
