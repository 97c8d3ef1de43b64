#!/usr/bin/env bash
# Kernel conformance: every shipped scenario under real kernel IPVS and under the
# embedded engine, compared by `lvslab conform` (verdicts, tallies, sequences,
# tables, connection states, diagnoses, and lvslab's views against the real
# ipvsadm's), inside Debian's kernel booted under qemu (ci/kernel-vm.sh).
# Exits non-zero on any difference the allow-list does not explain.
#
#   ci/conformance.sh [SCENARIO.toml ...]     (default: scenarios/ and fixtures/conform/)
#   RUNS=10 ci/conformance.sh                 (pass rates over 10 runs per engine)
#
# Then the scenarios with health checks once more, the kernel run's checkers being the real
# keepalived's (`conform --checkers keepalived`): lvslab's checkers against keepalived's.
# Last, `lvslab ipvsadm` changing a kept lab's kernel table, against the real ipvsadm
# (ci/kernel-ipvsadm.sh, about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
# The embedded engine forwards in userspace: under software emulation a debug build is
# too slow to keep a lab's timeouts, so the guest runs the release binary.
cargo build --release -q -p lvslab --bin lvslab
if [ $# -gt 0 ]; then files=("$@"); else files=(scenarios/*.toml fixtures/conform/*.toml); fi
started=$(date +%s)
vm() {
    LVSLAB=target/release/lvslab GUEST_TIMEOUT=${GUEST_TIMEOUT:-$((600 + 300 * ${RUNS:-1}))} bash ci/kernel-vm.sh -- \
        conform --allow ci/conformance-allow.toml --runs "${RUNS:-1}" "$@"
}
# Under software emulation on a loaded host the guest kernel has once locked up (RCU stall,
# soft lockup in two lab threads; docs/kernel-engine.md): it panics, and the VM is booted
# once more. A difference found by lvslab conform (exit 1) is never retried.
pass() {
    local rc=0
    vm "$@" || rc=$?
    if [ "$rc" -eq 3 ]; then
        echo "kernel conformance: the guest died before reporting; booting it once more"
        rc=0
        vm "$@" || rc=$?
    fi
    return "$rc"
}
status=0
# 1. The engines: kernel IPVS against the embedded engine, lvslab's checkers on both.
pass "${files[@]}" || status=$?
# 2. The checkers: the real keepalived's (keepalived -C driving kernel IPVS) against lvslab's
#    on the embedded engine, for every scenario with health checks.
checked=()
for f in "${files[@]}"; do grep -q '^\[service.check\]' "$f" && checked+=("$f"); done
if [ "$status" -eq 0 ] && [ ${#checked[@]} -gt 0 ]; then
    echo "kernel conformance: keepalived's checkers on ${#checked[@]} scenario(s)"
    pass --checkers keepalived "${checked[@]}" || status=$?
fi
# 3. `lvslab ipvsadm` -e/-d/-a and its views against the real ipvsadm in a kept lab
#    (only with the default file set: it keeps scenarios/dr-rr.toml up).
if [ "$status" -eq 0 ] && [ $# -eq 0 ]; then
    echo "kernel conformance: lvslab ipvsadm against the real ipvsadm"
    rc=0
    LVSLAB=ci/kernel-ipvsadm.sh GUEST_TIMEOUT=300 bash ci/kernel-vm.sh -- "$PWD/target/release/lvslab" || rc=$?
    if [ "$rc" -eq 3 ]; then
        echo "kernel conformance: the guest died before reporting; booting it once more"
        rc=0
        LVSLAB=ci/kernel-ipvsadm.sh GUEST_TIMEOUT=300 bash ci/kernel-vm.sh -- "$PWD/target/release/lvslab" || rc=$?
    fi
    status=$rc
fi
echo "kernel conformance: $(($(date +%s) - started)) s, exit $status"
exit "$status"
