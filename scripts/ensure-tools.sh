#!/usr/bin/env bash
# Installs the system tools the test suite runs for real, when they are missing: nats-server (the
# cluster tests start their own on a free port) and chromium (the observer's browser tests).
# Debian packages; needs root (CI and the dev machines run as root). Says what it could not do.
set -u
missing=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-tools: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) — the tests that need them will fail" >&2
  exit 0
fi
echo "ensure-tools: installing ${missing[*]} (Debian packages)" >&2
apt-get update -qq >/dev/null 2>&1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || echo "ensure-tools: could not install ${missing[*]}" >&2
exit 0
