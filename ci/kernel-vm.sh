#!/usr/bin/env bash
# Runs lvslab against a real IPVS kernel: Debian's kernel under qemu (software
# emulation, TCG), with this machine's / shared read-only over 9p and the
# host's lvslab binary run inside a chroot of it. CI runs it through
# ci/conformance.sh; see docs/kernel-engine.md.
#
#   ci/kernel-vm.sh [SCENARIO.toml ...]     (default: dr-rr nat-rr tun-rr)
#   ci/kernel-vm.sh -- LVSLAB-ARGS...       (one `lvslab LVSLAB-ARGS...` in the guest)
#
# In the first form each scenario runs with --engine kernel, then --engine
# embedded, in the guest. The console goes to $WORK/console.log; every run's
# exit status is printed there as "LVSLAB-EXIT <engine> <scenario> <status>"
# (or "LVSLAB-EXIT args - <status>" in the second form; qemu itself exits 0
# whatever the guest did). This script exits 0 only if every run did.
#
# Environment: WORK (default /tmp/lvslab-kvm), MACHINE (q35 or microvm,
# default q35: microvm hung on a loaded host, see the doc), KVERSION (default: what linux-image-amd64 points to),
# LVSLAB (default: target/debug/lvslab, built if missing), GUEST_TIMEOUT
# (seconds, default 900), MEM (MiB, default 1024).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/lvslab-kvm}
MACHINE=${MACHINE:-q35}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-900}
MEM=${MEM:-1024}
LVSLAB=${LVSLAB:-$REPO/target/debug/lvslab}
ARGS=()
if [ "${1:-}" = "--" ]; then
    shift
    ARGS=("$@")
    SCENARIOS=()
elif [ $# -gt 0 ]; then SCENARIOS=("$@"); else SCENARIOS=(scenarios/dr-rr.toml scenarios/nat-rr.toml scenarios/tun-rr.toml); fi

log() { echo "kernel-vm: $*" >&2; }

# --- tools ------------------------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v depmod >/dev/null || need+=(kmod)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x "$LVSLAB" ]; then
    log "building lvslab"
    (cd "$REPO" && cargo build -q -p lvslab --bin lvslab)
fi

# --- kernel -----------------------------------------------------------------
mkdir -p "$WORK"
if [ -z "${KVERSION:-}" ]; then
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$pkg" ] || { log "cannot tell which kernel linux-image-amd64 points to (run apt-get update?)"; exit 2; }
    KVERSION=${pkg#linux-image-}
fi
KROOT=$WORK/kroot-$KVERSION
if [ ! -d "$KROOT/lib/modules/$KVERSION" ]; then
    log "fetching linux-image-$KVERSION"
    (cd "$WORK" && apt-get download "linux-image-$KVERSION" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    deb=$(ls "$WORK"/linux-image-"$KVERSION"_*.deb | head -1)
    rm -rf "$KROOT.tmp" && dpkg-deb -x "$deb" "$KROOT.tmp"
    depmod -b "$KROOT.tmp" "$KVERSION" # the package ships no modules.dep
    mv "$KROOT.tmp" "$KROOT"
fi
KERNEL=$KROOT/boot/vmlinuz-$KVERSION

# --- initramfs: busybox + modules in dependency order -----------------------
case $MACHINE in
microvm) VIRTIO=virtio_mmio; NINEP_DEV=virtio-9p-device ;;
q35) VIRTIO=virtio_pci; NINEP_DEV=virtio-9p-pci ;;
*) log "MACHINE must be microvm or q35"; exit 2 ;;
esac
# No ipip: with it loaded, a real server without a matching tunnel answers IPIP
# with ICMP port unreachable; lvslab's own decapsulator (raw socket + TUN) is used.
MODULES=("$VIRTIO" 9pnet_virtio 9p veth bridge tun ip_vs
    ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sed ip_vs_nq ip_vs_dh ip_vs_sh ip_vs_mh
    ip_vs_lblc ip_vs_lblcr ip_vs_fo ip_vs_ovf
    nf_tables nft_limit nft_reject_inet nft_fib_inet nft_ct nft_nat nft_masq nft_chain_nat)
# The nft modules are what scenarios' host firewalls use: reject, fib (reverse-path checks),
# ct, and masquerading routers (nat chains); the guest cannot load modules on demand.
INITRD=$WORK/initrd-$MACHINE.cpio.gz
IR=$WORK/initramfs
rm -rf "$IR" && mkdir -p "$IR"/{bin,dev,proc,sys,host,modules}
cp /bin/busybox "$IR/bin/busybox"
: >"$IR/modules.order"
for m in "${MODULES[@]}"; do
    modprobe -d "$KROOT" -S "$KVERSION" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
    cp "$ko" "$IR/modules/"
    basename "$ko" >>"$IR/modules.order"
done

REPO_IN_GUEST=$REPO
# Words without quotes or spaces inside them (paths, flags): they go into the guest's script as they are.
GUEST_ARGS="${ARGS[*]}"
LVSLAB_IN_GUEST=$(readlink -f "$LVSLAB")
cat >"$IR/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for ko in \$(cat /modules.order); do
    insmod /modules/\$ko || echo "LVSLAB-GUEST insmod \$ko failed"
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 hostroot /host || { echo "LVSLAB-GUEST 9p mount failed"; poweroff -f; }
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mount -t tmpfs tmp /host/tmp
mount -t tmpfs run /host/run
echo "LVSLAB-GUEST kernel \$(uname -r), ip_vs: \$(head -1 /proc/net/ip_vs 2>/dev/null)"
chroot /host /bin/sh -c '
    cd "$REPO_IN_GUEST" || exit 99
    export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp
    if [ -n "$GUEST_ARGS" ]; then
        echo "=== lvslab $GUEST_ARGS"
        "$LVSLAB_IN_GUEST" $GUEST_ARGS
        echo "LVSLAB-EXIT args - \$?"
    fi
    for s in ${SCENARIOS[*]}; do
        for engine in kernel embedded; do
            echo "=== lvslab run --show-ipvs --engine \$engine \$s"
            "$LVSLAB_IN_GUEST" run --show-ipvs --engine \$engine "\$s"
            echo "LVSLAB-EXIT \$engine \$s \$?"
        done
    done
'
echo "LVSLAB-GUEST done \$?"
poweroff -f
EOF
chmod +x "$IR/init"
(cd "$IR" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$INITRD")

# --- boot ----------------------------------------------------------------------
CONSOLE=$WORK/console.log
log "booting $KVERSION on $MACHINE (TCG); console in $CONSOLE"
case $MACHINE in
microvm) MACHINE_ARGS=(-M microvm,rtc=on -serial stdio) ; CONSOLE_ARG=console=ttyS0 ;;
q35) MACHINE_ARGS=(-M q35 -serial stdio) ; CONSOLE_ARG=console=ttyS0 ;;
esac
timeout --foreground "$GUEST_TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp 2 -m "$MEM" \
    "${MACHINE_ARGS[@]}" -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$KERNEL" -initrd "$INITRD" \
    -append "$CONSOLE_ARG ${KERNEL_ARGS:-loglevel=4} softlockup_panic=1 panic=-1 rdinit=/init" \
    -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
    -device "$NINEP_DEV",fsdev=hostroot,mount_tag=hostroot \
    </dev/null | tee "$CONSOLE" || log "qemu or timeout exited with $?"

# --- verdict ---------------------------------------------------------------
# The serial console ends lines with CRLF.
exits=$(tr -d '\r' <"$CONSOLE" | grep -a '^LVSLAB-EXIT' || true)
echo "$exits"
expected=$((${#SCENARIOS[@]} * 2 + (${#ARGS[@]} > 0 ? 1 : 0)))
ran=$(printf '%s' "$exits" | grep -c . || true)
failed=$(printf '%s\n' "$exits" | awk 'NF == 4 && $4 != "0"' | wc -l)
if [ "$ran" -ne "$expected" ]; then
    log "only $ran of $expected runs reported an exit status (see $CONSOLE)"
    # 3: the guest itself died or hung (a kernel lockup panics it), not a failed comparison.
    exit 3
fi
[ "$failed" -eq 0 ] || { log "$failed of $expected runs failed"; exit 1; }
log "all $expected runs passed"
