//! The engine's loop end to end on a TAP device in a private network
//! namespace: the test plays client and real servers by writing frames into
//! the TAP and reading what the engine sends out of it. Needs root.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use etherparse::{ArpEthIpv4Packet, ArpOperation, ArpPacket, PacketBuilder};

use super::frame::{self, Frame, ETH_LEN};
use super::{EmbeddedEngine, IfaceFacts};
use crate::director::ipvs::{DestConfig, Forward, Proto, SchedFlags, ServiceConfig, Sysctls};
use crate::director::{DirectorConfig, Engine, ServiceKey};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const RS: [Ipv4Addr; 3] = [Ipv4Addr::new(10, 0, 0, 21), Ipv4Addr::new(10, 0, 0, 22), Ipv4Addr::new(10, 0, 0, 23)];
const RS_MAC: [[u8; 6]; 3] = [[2, 0, 0, 0, 0, 0x21], [2, 0, 0, 0, 0, 0x22], [2, 0, 0, 0, 0, 0x23]];

struct Tap {
    fd: OwnedFd,
    index: u32,
    mac: [u8; 6],
}

fn ifreq_named(name: &str) -> libc::ifreq {
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

impl Tap {
    /// Creates and brings up a TAP in the calling thread's namespace.
    fn create(name: &str) -> io::Result<Tap> {
        let raw = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK) };
        check(raw)?;
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = ifreq_named(name);
        req.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI;
        check(unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req) })?;
        let ctl = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        check(ctl)?;
        let ctl = unsafe { OwnedFd::from_raw_fd(ctl) };
        let mut req = ifreq_named(name);
        check(unsafe { libc::ioctl(ctl.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) })?;
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        check(unsafe { libc::ioctl(ctl.as_raw_fd(), libc::SIOCSIFFLAGS as _, &mut req) })?;
        let mut req = ifreq_named(name);
        check(unsafe { libc::ioctl(ctl.as_raw_fd(), libc::SIOCGIFHWADDR as _, &mut req) })?;
        let mut mac = [0u8; 6];
        for (m, b) in mac.iter_mut().zip(unsafe { req.ifr_ifru.ifru_hwaddr.sa_data }.iter()) {
            *m = *b as u8;
        }
        let cname = std::ffi::CString::new(name).unwrap();
        let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if index == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tap { fd, index, mac })
    }

    fn write(&self, frame: &[u8]) {
        let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        assert_eq!(n, frame.len() as isize, "write to tap: {}", io::Error::last_os_error());
    }

    /// Next IPv4 or ARP frame the engine sent (the kernel's IPv6 chatter is
    /// skipped), or None after `timeout`.
    fn read(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32 + 1) };
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > ETH_LEN as isize {
                let f = buf[..n as usize].to_vec();
                if f[12..14] == [0x08, 0x00] || f[12..14] == [0x08, 0x06] {
                    return Some(f);
                }
            }
        }
    }
}

fn arp_frame(op: ArpOperation, src_mac: [u8; 6], dst_mac: [u8; 6], sender: Ipv4Addr, target_mac: [u8; 6], target: Ipv4Addr) -> Vec<u8> {
    let arp = ArpEthIpv4Packet { operation: op, sender_mac: src_mac, sender_ipv4: sender.octets(), target_mac, target_ipv4: target.octets() };
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&arp.to_bytes());
    f
}

fn syn(to_mac: [u8; 6], dst: Ipv4Addr, sport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, to_mac).ipv4(CLIENT.octets(), dst.octets(), 64).tcp(sport, 80, 1, 64240).syn().write(&mut f, &[]).unwrap();
    f
}

fn dr_config() -> DirectorConfig {
    let service = ServiceConfig { vip: VIP, port: 80, proto: Proto::Tcp, scheduler: "rr".into(), flags: SchedFlags::default(), persistence: None, persistence_netmask: Ipv4Addr::BROADCAST, one_packet: false };
    let dests = RS.iter().map(|&addr| DestConfig { addr, port: 80, weight: 1, forward: Forward::Dr, upper_threshold: 0, lower_threshold: 0 }).collect();
    DirectorConfig { services: vec![(service, dests)], sysctls: Sysctls::default(), client_iface: "lvtap0".into(), server_iface: "lvtap0".into(), fullnat_local_addrs: vec![] }
}

fn run_dr_scenario() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    let tap = Tap::create("lvtap0").expect("create tap");
    let facts = IfaceFacts { name: "lvtap0".into(), index: tap.index, mac: tap.mac, addrs: vec!["10.0.0.1/24".parse().unwrap()] };
    // Threads spawned from here inherit this thread's private namespace.
    let engine = EmbeddedEngine::start_with(dr_config(), facts, None, |name, body| std::thread::Builder::new().name(name).spawn(body)).expect("engine starts");
    let mut engine: Box<dyn Engine> = Box::new(engine);

    // The engine asks for the real servers' MACs; the "servers" answer.
    let mut asked = Vec::new();
    while asked.len() < RS.len() {
        let f = tap.read(Duration::from_secs(3)).expect("ARP request for every real server");
        let Ok(Frame::Arp(a)) = frame::parse(&f) else { continue };
        assert_eq!(a.operation, ArpOperation::REQUEST);
        assert_eq!(a.sender_ipv4_addr(), Ipv4Addr::new(10, 0, 0, 1), "asks from its own address");
        let target = a.target_ipv4_addr();
        let i = RS.iter().position(|&r| r == target).expect("asks only for real servers");
        asked.push(i);
        tap.write(&arp_frame(ArpOperation::REPLY, RS_MAC[i], tap.mac, target, tap.mac, Ipv4Addr::new(10, 0, 0, 1)));
    }

    // The client resolves the VIP: the engine answers with the director's MAC.
    tap.write(&arp_frame(ArpOperation::REQUEST, CLIENT_MAC, [0xff; 6], CLIENT, [0; 6], VIP));
    let reply = tap.read(Duration::from_secs(2)).expect("ARP reply for the VIP");
    let arp = ArpPacket::from_slice(&reply[ETH_LEN..]).unwrap().try_eth_ipv4().unwrap();
    assert_eq!((arp.operation, arp.sender_ipv4_addr(), arp.sender_mac), (ArpOperation::REPLY, VIP, tap.mac));

    // Noise first, each followed by a SYN so we know it was processed.
    let mut truncated = syn(tap.mac, VIP, 39999);
    truncated.truncate(ETH_LEN + 30); // IPv4 total length now lies
    let mut fragment = syn(tap.mac, VIP, 39998);
    fragment[ETH_LEN + 6..ETH_LEN + 8].copy_from_slice(&0x2000u16.to_be_bytes()); // MF
    let not_vip = syn(tap.mac, Ipv4Addr::new(10, 0, 0, 50), 39997);
    let not_ours = syn([2, 0, 0, 0, 0, 0x99], VIP, 39996);

    let mut picked = Vec::new();
    for (k, noise) in [Some(truncated), Some(fragment), Some(not_vip), Some(not_ours), None, None].into_iter().enumerate() {
        if let Some(n) = noise {
            tap.write(&n);
        }
        let sport = 40000 + k as u16;
        tap.write(&syn(tap.mac, VIP, sport));
        let out = tap.read(Duration::from_secs(2)).expect("forwarded SYN");
        let Ok(Frame::Ipv4(ip)) = frame::parse(&out) else { panic!("not IPv4") };
        assert_eq!(ip.l4.unwrap().sport, sport, "only the SYN to the VIP is forwarded");
        assert_eq!((ip.daddr, ip.ttl), (VIP, 63));
        assert_eq!(&out[6..12], &tap.mac);
        picked.push(RS_MAC.iter().position(|m| m[..] == out[0..6]).expect("sent to a real server's MAC"));
    }
    assert_eq!(picked, [0, 1, 2, 0, 1, 2], "round robin over the three real servers");

    let stats = engine.stats();
    assert_eq!(stats.forwarded_in, 6);
    assert_eq!(stats.malformed.get("ipv4_total_length"), Some(&1), "{stats:?}");
    assert_eq!(stats.dropped.get("fragment"), Some(&1), "{stats:?}");
    assert_eq!(stats.arp_answered, 1);
    assert_eq!(stats.arp_requests_sent, 3);

    // Weight 0 takes a server out of rotation.
    let key = ServiceKey { vip: VIP, port: 80, proto: Proto::Tcp };
    engine.set_weight(key, SocketAddrV4::new(RS[0], 80), 0).unwrap();
    assert!(engine.set_weight(key, SocketAddrV4::new(Ipv4Addr::new(10, 9, 9, 9), 80), 1).is_err());
    for k in 0..4u16 {
        tap.write(&syn(tap.mac, VIP, 41000 + k));
        let out = tap.read(Duration::from_secs(2)).expect("forwarded SYN");
        assert_ne!(&out[0..6], &RS_MAC[0], "weight-0 server must not be picked");
    }

    let t0 = Instant::now();
    engine.shutdown().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1), "shutdown is prompt");
}

#[test]
fn dr_engine_on_a_tap_answers_arp_round_robins_and_counts_junk() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root for a private network namespace and a TAP device");
        return;
    }
    // unshare() changes only this thread's namespace; keep it off the test runner's threads.
    std::thread::spawn(run_dr_scenario).join().expect("scenario thread");
}
