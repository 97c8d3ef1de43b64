#!/usr/bin/env bash
# Installs what the tests need on a fresh machine. Rust is already there.
# The tests themselves need nothing else: lvslab builds its labs over netlink, not with `ip`.
# iproute2 is only for `lvslab exec ... ip ...` by hand and for the bring-up benchmark's comparison script.
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo --version
