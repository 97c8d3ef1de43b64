#!/bin/sh
# `lvslab ipvsadm` on the kernel engine against the real ipvsadm, in the qemu guest of
# ci/kernel-vm.sh (as root, from the repo):
#
#   LVSLAB=ci/kernel-ipvsadm.sh ci/kernel-vm.sh -- "$PWD/target/debug/lvslab"
#
# Keeps dr-rr up (kernel engine: the guest has IPVS), compares each view with what the real
# ipvsadm prints in the director's namespace, drains rs1 with -e -w 0 and checks it gets no
# request, then -d/-a and their refusals, each against the real ipvsadm's words and status.
# Prints IPVSADM-OK / IPVSADM-BAD per check; exits 1 on any BAD.
B=${1:?usage: kernel-ipvsadm.sh LVSLAB-BINARY}
cd "$(dirname "$0")/.." || exit 99
fail=0
check() { if [ "$1" = "$2" ]; then echo "IPVSADM-OK $3"; else echo "IPVSADM-BAD $3"; echo "--- got"; echo "$1"; echo "--- want"; echo "$2"; fail=1; fi; }
$B up --name k scenarios/dr-rr.toml || exit 98
RS1=192.0.2.11
for v in "-Ln" "-Ln --stats" "-Ln --rate" "-Lnc" "-S -n" "-Ln --persistent-conn" "-Ln -t 192.0.2.100:80"; do
    check "$($B ipvsadm k $v)" "$($B exec k director -- ipvsadm $v)" "view $v"
done
$B ipvsadm k -e -t 192.0.2.100:80 -r $RS1:80 -w 0; check "$?" 0 "-e -w 0 exit"
check "$($B exec k director -- ipvsadm -S -n | grep $RS1)" "-a -t 192.0.2.100:80 -r $RS1:80 -g -w 0" "real ipvsadm sees the drain"
got=""
for i in 1 2 3 4 5 6 7 8 9; do got="$got $($B exec k client -- curl -s -m 5 http://192.0.2.100/ | sed 's/.*"backend":"\([^"]*\)".*/\1/')"; done
echo "backends:$got"
case "$got" in *rs1*) check drained-yet-served none "no request to rs1";; *) check ok ok "no request to rs1";; esac
check "$($B ipvsadm k -Ln)" "$($B exec k director -- ipvsadm -Ln)" "view -Ln after drain"
$B ipvsadm k -d -t 192.0.2.100:80 -r $RS1:80; check "$?" 0 "-d exit"
check "$($B ipvsadm k -d -t 192.0.2.100:80 -r $RS1:80 2>&1; echo $?)" "$($B exec k director -- ipvsadm -d -t 192.0.2.100:80 -r $RS1:80 2>&1; echo $?)" "-d twice as ipvsadm"
check "$($B ipvsadm k -e -t 192.0.2.100:80 -r $RS1:80 2>&1; echo $?)" "$($B exec k director -- ipvsadm -e -t 192.0.2.100:80 -r $RS1:80 2>&1; echo $?)" "-e of a gone server as ipvsadm"
check "$($B ipvsadm k -a -t 192.0.2.100:81 -r $RS1:81 2>&1; echo $?)" "$($B exec k director -- ipvsadm -a -t 192.0.2.100:81 -r $RS1:81 2>&1; echo $?)" "-a to no service as ipvsadm"
check "$($B ipvsadm k -Ln -t 192.0.2.100:81 2>&1; echo $?)" "$($B exec k director -- ipvsadm -Ln -t 192.0.2.100:81 2>&1; echo $?)" "-L of no service as ipvsadm"
$B ipvsadm k -a -t 192.0.2.100:80 -r $RS1:80 -w 1; check "$?" 0 "-a exit"
check "$($B ipvsadm k -a -t 192.0.2.100:80 -r $RS1:80 2>&1; echo $?)" "$($B exec k director -- ipvsadm -a -t 192.0.2.100:80 -r $RS1:80 2>&1; echo $?)" "-a twice as ipvsadm"
check "$($B ipvsadm k -e -t 192.0.2.100:80 -w 0 2>&1; echo $?)" "$($B exec k director -- ipvsadm -e -t 192.0.2.100:80 -w 0 2>&1; echo $?)" "missing -r as ipvsadm"
check "$($B ipvsadm k -S -n)" "$($B exec k director -- ipvsadm -S -n)" "view -S -n after -a"
$B down k
ls /run/netns 2>/dev/null | grep lvslab-k- && fail=1
exit $fail
