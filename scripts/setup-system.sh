#!/usr/bin/env bash
# System packages the tests need beyond Node, from Debian: prometheus (the metrics tests scrape a
# real local cluster with it and check the configs with promtool), etcd-server (bench:durability
# compares the cluster with a three-member etcd it starts on loopback; its short run in `pnpm test`
# checks the etcd rows are there), systemd (systemd-analyze verifies the units the EC2
# user-data writes) and chromium (the status page's browser test drives it). Idempotent; uses
# sudo when not root.
set -euo pipefail
packages=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || packages+=(prometheus)
command -v etcd >/dev/null || packages+=(etcd-server)
command -v systemd-analyze >/dev/null || packages+=(systemd)
command -v chromium >/dev/null || packages+=(chromium)
if [ "${#packages[@]}" -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "setup-system: missing ${packages[*]} and this system has no apt-get; install them so that prometheus, promtool, etcd, systemd-analyze and chromium are on PATH" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "setup-system: installed ${packages[*]}"
