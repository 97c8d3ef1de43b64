#!/usr/bin/env bash
# Installs what the tests need on a fresh machine. Rust is already there.
# The tests themselves need nothing else: lvslab builds its labs over netlink, not with `ip`.
# iproute2 is for the bring-up benchmark's comparison script; curl for the CLI test that works inside a kept lab.
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
# tests/cli.rs curls the VIP inside a kept lab, as a user would.
command -v curl >/dev/null || need+=(curl)
# tests/ci_integration.rs validates `run --junit` output against the JUnit schema with xmllint.
command -v xmllint >/dev/null || need+=(libxml2-utils)
# tests/html_report.rs opens the --html report in headless Chromium (and keeps a screenshot).
command -v chromium >/dev/null || need+=(chromium)
# Kernel conformance (ci/conformance.sh): Debian's kernel under qemu, its modules
# resolved with kmod, a busybox initramfs, and the real ipvsadm as a second witness.
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v depmod >/dev/null || need+=(kmod)
command -v ipvsadm >/dev/null || need+=(ipvsadm)
# The real keepalived as a VRRP implementation (harness/src/keepalived, docs/keepalived.md);
# nft for keepalived's vrrp_strict/no_accept rules and the block_adverts event. Without
# recommends: keepalived's (ipvsadm) is above already.
lean=()
[[ -x /usr/sbin/keepalived ]] || command -v keepalived >/dev/null || lean+=(keepalived)
[[ -x /usr/sbin/nft ]] || command -v nft >/dev/null || lean+=(nftables)
# tests/capture.rs reads every `--capture` file back with tshark.
command -v tshark >/dev/null || lean+=(tshark)
if ((${#need[@]} + ${#lean[@]})); then
  apt-get update -qq
fi
if ((${#need[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
if ((${#lean[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean[@]}"
fi
cargo --version
