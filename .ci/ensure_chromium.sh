#!/usr/bin/env bash
# The dashboard's browser tests drive Debian's Chromium; install it when it is missing.
set -eu
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium is missing: install it (e.g. sudo apt-get install chromium) to run the UI tests" >&2
fi
