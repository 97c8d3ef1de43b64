//! A count the harness takes itself of the frames for a VIP that reach the director.
//!
//! An AF_PACKET socket on the director's client-facing interface, with a classic BPF filter
//! that keeps incoming unicast IPv4 frames whose destination is the VIP. The socket is never
//! read: the kernel counts every frame the filter passes in `PACKET_STATISTICS` whether it
//! queues or drops it. So the count is exact under either engine, unlike kernel IPVS's
//! `InPkts`, which lags by up to its 2 s estimator period.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys::{packet, socket};
use crate::wire::{ethernet, ipv4, EtherType};

const ETH_P_IP: u16 = EtherType::IPV4.0;
/// Offset of the IPv4 destination in an Ethernet frame.
const IPV4_DST_OFFSET: u32 = (ethernet::HEADER_LEN + ipv4::DST_ADDR_AT) as u32;

pub struct VipCounter {
    fd: OwnedFd,
    /// `PACKET_STATISTICS` resets on every read: the running total.
    total: AtomicU64,
}

impl VipCounter {
    /// Starts counting. Call on a thread inside the director's namespace.
    pub fn open(iface: &str, vip: Ipv4Addr) -> io::Result<VipCounter> {
        let ifindex = nix::net::if_::if_nametoindex(iface).map_err(|e| io::Error::other(format!("{iface}: {e}")))?;
        // Protocol 0 receives nothing until bound, so no frame is counted before the filter.
        let fd = socket::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)?;
        packet::attach_filter(&fd, &filter(vip))?;
        // The smallest buffer: a few frames queue, the rest are dropped and still counted.
        socket::set_int_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 0)?;
        packet::bind(&fd, ifindex, ETH_P_IP)?;
        Ok(VipCounter {
            fd,
            total: AtomicU64::new(0),
        })
    }

    /// Frames for the VIP received since `open`. Any thread may call it.
    pub fn read(&self) -> io::Result<u64> {
        let stats = packet::statistics(&self.fd)?;
        // tp_packets already includes tp_drops.
        let added = u64::from(stats.tp_packets);
        Ok(self.total.fetch_add(added, Ordering::Relaxed) + added)
    }
}

/// `pkttype == PACKET_HOST && ip dst == vip`, as classic BPF (tcpdump -d shape).
fn filter(vip: Ipv4Addr) -> Vec<libc::sock_filter> {
    let ld_abs = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    vec![
        // Ancillary load: skb->pkt_type (outgoing copies of forwarded frames are left out).
        op(ld_abs, 0, 0, (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32),
        op(jeq, 0, 3, libc::PACKET_HOST as u32),
        op(ld_abs, 0, 0, IPV4_DST_OFFSET),
        op(jeq, 0, 1, u32::from(vip)),
        op(ret, 0, 0, 1),
        op(ret, 0, 0, 0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Root: frames sent over a veth pair in a fresh namespace are counted exactly.
    #[test]
    fn counts_incoming_frames_for_the_vip_only() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let run = |args: &str| {
                let ok = std::process::Command::new("ip")
                    .args(args.split(' '))
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                assert!(ok, "ip {args}");
            };
            run("link add vc0 type veth peer name vc1");
            run("link set vc0 up");
            run("link set vc1 address 02:00:00:00:00:01");
            run("link set vc1 up");
            let vip = Ipv4Addr::new(192, 0, 2, 100);
            let counter = VipCounter::open("vc1", vip).unwrap();
            let send = |dst: Ipv4Addr, n: usize| {
                let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
                nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::BindToDevice, &"vc0".into()).unwrap();
                // A static neighbour: the frames go out at once, to vc1's MAC.
                run(&format!("neigh replace {dst} lladdr 02:00:00:00:00:01 dev vc0"));
                run(&format!("route replace {dst}/32 dev vc0"));
                for _ in 0..n {
                    sock.send_to(b"x", (dst, 9)).unwrap();
                }
            };
            // The others first: frames arrive in order, so once 25 are counted they were seen.
            send(Ipv4Addr::new(192, 0, 2, 11), 7);
            send(vip, 25);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let mut seen = counter.read().unwrap();
            while seen < 25 && std::time::Instant::now() < deadline {
                std::thread::yield_now();
                seen = counter.read().unwrap();
            }
            assert_eq!(seen, 25, "frames for the VIP, and only those");
            assert_eq!(counter.read().unwrap(), 25, "reads accumulate");
        })
        .join()
        .unwrap();
    }
}
