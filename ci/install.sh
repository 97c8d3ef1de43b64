#!/usr/bin/env bash
# Installs what the tests need on a fresh machine. Rust is already there.
# The tests themselves need nothing else: lvslab builds its labs over netlink, not with `ip`.
# iproute2 is for the bring-up benchmark's comparison script; curl for the CLI test that works inside a kept lab.
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
# tests/cli.rs curls the VIP inside a kept lab, as a user would.
command -v curl >/dev/null || need+=(curl)
# Kernel conformance (ci/conformance.sh): Debian's kernel under qemu, its modules
# resolved with kmod, a busybox initramfs, and the real ipvsadm as a second witness.
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v depmod >/dev/null || need+=(kmod)
command -v ipvsadm >/dev/null || need+=(ipvsadm)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo --version
