//! The packet loop: one OS thread inside the director's namespace reads frames
//! from the AF_PACKET socket(s), asks `Ipvs` what to do, rewrites and sends.
//! `Ipvs` and the counters sit behind one mutex shared with the control side
//! (snapshots, weight changes, stats); the loop takes it once per frame.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;

use super::drops::DropReason;
use super::forward::{self, Csum, Rewrite, Tunnel};
use super::frame::{self, Frame, Ipv4Frame};
use super::icmp;
use super::icmp_limit::IcmpRateLimit;
use super::neighbour::{Carried, NeighbourTable, PendingFrame};
use super::relay::{self, Skip};
use super::reset;
use super::segment;
use super::socket::{PacketSocket, Received, VnetHdr, RECV_BUF_LEN};
use crate::director::EngineStats;
use crate::director::VipGate;
use crate::ipvs::{self, Forward, InVerdict, Ipvs, OutVerdict, PacketIn, PacketOut, Proto};
use crate::nft::mark::{self, MarkRule};
use crate::sys::poll::PollSet;
use crate::wire::{arp, ethernet, ipip, ArpRepr, EthernetFrame, IpProtocol, Ipv4Packet, Mac};

/// How long the loop sleeps in poll: bounds how late a shutdown is seen.
pub const POLL_TIMEOUT: Duration = Duration::from_millis(50);
const EXPIRE_EVERY: Duration = Duration::from_secs(1);
/// After a frame, how long the loop keeps polling without sleeping.
const SPIN_AFTER_FRAME: Duration = Duration::from_micros(50);
/// Frames drained per socket per wake-up, so one busy side cannot starve the other.
const BATCH: usize = 64;

/// What the engine needs to know about an interface of the director.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceFacts {
    pub name: String,
    pub index: u32,
    pub mac: Mac,
    pub addrs: Vec<Ipv4Net>,
}

impl IfaceFacts {
    /// Source address for talking to `peer`: one in the same subnet, else the first.
    pub fn source_for(&self, peer: Ipv4Addr) -> Option<Ipv4Addr> {
        self.addrs
            .iter()
            .find(|n| n.contains(&peer))
            .or(self.addrs.first())
            .map(|n| n.addr())
    }
}

pub struct Shared {
    pub ipvs: Ipvs,
    pub stats: EngineStats,
}

pub fn count(map: &mut std::collections::BTreeMap<String, u64>, reason: &str) {
    match map.get_mut(reason) {
        Some(v) => *v += 1,
        None => {
            map.insert(reason.to_string(), 1);
        }
    }
}

fn count_drops(map: &mut std::collections::BTreeMap<DropReason, u64>, reason: DropReason, n: u64) {
    *map.entry(reason).or_default() += n;
}

fn count_drop(map: &mut std::collections::BTreeMap<DropReason, u64>, reason: DropReason) {
    count_drops(map, reason, 1);
}

/// Counter key of the errors the kernel's ICMP rate limit would have held back.
const RATE_LIMITED: &str = "rate_limited";

/// MTU assumed when the interface's cannot be read.
const DEFAULT_MTU: u32 = 1500;
/// The outer IPv4 header IPIP adds.
const IPIP_OVERHEAD: usize = ipip::OVERHEAD;

struct Side {
    iface: IfaceFacts,
    sock: PacketSocket,
    neigh: NeighbourTable,
    mtu: u32,
}

impl Side {
    fn open(iface: IfaceFacts) -> std::io::Result<Side> {
        let sock = PacketSocket::bind(iface.index)?;
        let mtu = sock.interface_mtu(&iface.name).unwrap_or(DEFAULT_MTU);
        Ok(Side {
            iface,
            sock,
            neigh: NeighbourTable::default(),
            mtu,
        })
    }
}

pub struct PacketLoop {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    sides: Vec<Side>,
    /// Index into `sides` of the server-facing side (0 when one interface).
    server: usize,
    fullnat_local_addrs: Vec<Ipv4Addr>,
    /// Addresses the director's kernel owns: their traffic is the kernel's.
    kernel_local: Vec<Ipv4Addr>,
    /// With VRRP: the VIPs this director holds now (the others are the master's).
    vip_gate: Option<VipGate>,
    ip_id: u16,
    /// The errors the director's kernel would originate are limited as it limits them.
    icmp_limit: IcmpRateLimit,
    /// The fwmark services' marking rules, applied here as nft would in prerouting: this
    /// socket sees frames before netfilter, so it never reads an nft mark.
    marks: Vec<MarkRule>,
    /// False: partial checksums are forwarded as they came (`DirectorConfig::complete_checksums`).
    complete_checksums: bool,
}

const CLIENT: usize = 0;

impl PacketLoop {
    /// Opens the sockets; must run on a thread inside the director's namespace.
    pub fn open(
        shared: Arc<Mutex<Shared>>,
        stop: Arc<AtomicBool>,
        client: IfaceFacts,
        server: Option<IfaceFacts>,
        fullnat_local_addrs: Vec<Ipv4Addr>,
        vip_gate: Option<VipGate>,
        complete_checksums: bool,
    ) -> std::io::Result<Self> {
        let mut sides = vec![Side::open(client)?];
        if let Some(server) = server {
            sides.push(Side::open(server)?);
        }
        let server = sides.len() - 1;
        let kernel_local = sides
            .iter()
            .flat_map(|s| s.iface.addrs.iter().map(|n| n.addr()))
            .collect();
        Ok(PacketLoop {
            shared,
            stop,
            sides,
            server,
            fullnat_local_addrs,
            kernel_local,
            vip_gate,
            ip_id: 1,
            icmp_limit: IcmpRateLimit::from_sysctls(),
            marks: Vec::new(),
            complete_checksums,
        })
    }

    /// Marks frames as `rules` do (fwmark services).
    pub fn with_marks(mut self, rules: Vec<MarkRule>) -> Self {
        self.marks = rules;
        self
    }

    /// The mark prerouting would set on `ip`: 0 for none, fragments after the first included.
    fn mark_of(&self, ip: &Ipv4Frame) -> u32 {
        if self.marks.is_empty() {
            return 0;
        }
        let (Some(l4), Some(proto)) = (ip.l4, Proto::from_number(ip.protocol.0)) else {
            return 0;
        };
        mark::mark_of(&self.marks, proto, ip.daddr, l4.dport)
    }

    pub fn run(mut self) {
        let mut buf = vec![0u8; RECV_BUF_LEN];
        let mut last_expire = Instant::now();
        let mut last_frame = Instant::now();
        let mut polls = PollSet::readable(self.sides.iter().map(|s| s.sock.as_fd()));
        while !self.stop.load(Ordering::Relaxed) {
            // Frames of one connection come in bursts: after a frame, keep reading without
            // sleeping for a moment, since a wake-up from poll costs more than the frame itself.
            let mut got = 0;
            for side in 0..self.sides.len() {
                got += self.drain(side, &mut buf);
            }
            let now = Instant::now();
            if got > 0 {
                last_frame = now;
            } else if now.duration_since(last_frame) >= SPIN_AFTER_FRAME {
                // EINTR or a transient error: fall through to the bounded sleep below.
                if polls.wait(POLL_TIMEOUT).is_err() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            } else {
                std::hint::spin_loop();
            }
            self.tick_neighbours(now);
            if now.duration_since(last_expire) >= EXPIRE_EVERY {
                self.shared.lock().unwrap().ipvs.expire(now);
                last_expire = now;
            }
        }
    }

    /// Reads what is waiting on one side (up to BATCH frames); returns how many.
    fn drain(&mut self, side: usize, buf: &mut [u8]) -> usize {
        for n in 0..BATCH {
            match self.sides[side].sock.recv(buf) {
                Ok(Some(rx)) => {
                    let shared = Arc::clone(&self.shared);
                    let mut guard = shared.lock().unwrap();
                    self.handle(side, &buf[..rx.len], rx, &mut guard);
                }
                Ok(None) => return n,
                Err(_) => {
                    count_drop(&mut self.shared.lock().unwrap().stats.dropped, DropReason::RecvFailed);
                    return n;
                }
            }
        }
        BATCH
    }

    fn handle(&mut self, side: usize, bytes: &[u8], rx: Received, sh: &mut Shared) {
        // Frames for other hosts (bridge flooding) and multicast are not ours.
        if rx.pkttype != libc::PACKET_HOST && rx.pkttype != libc::PACKET_BROADCAST {
            return;
        }
        sh.stats.frames_seen += 1;
        let parsed = match frame::parse(bytes) {
            Ok(f) => f,
            Err(m) => return count(&mut sh.stats.malformed, m.as_str()),
        };
        match parsed {
            Frame::Other => {}
            Frame::Arp(a) => self.handle_arp(side, a, sh),
            Frame::Ipv4(ip) => {
                if ip.src_mac == self.sides[side].iface.mac {
                    return; // our own frame looped back
                }
                let csum = self.csum_as_read(&rx.vnet);
                if ip.protocol == IpProtocol::ICMP {
                    return self.handle_icmp(bytes, ip, csum, sh);
                }
                let vnet_out = if csum == Csum::PartialGso {
                    rx.vnet
                } else {
                    VnetHdr::default()
                };
                let mark = self.mark_of(&ip);
                // Marked: policy routing delivers it locally, whatever its destination.
                if mark != 0 || sh.ipvs.is_vip(ip.daddr) {
                    if sh.ipvs.is_vip(ip.daddr) && !self.holds(ip.daddr) {
                        return;
                    }
                    if self.accepts() {
                        self.handle_request(side, bytes, ip, mark, csum, vnet_out, sh);
                    } else {
                        // keepalived's no_accept drop (nft input) comes before IPVS's hook.
                        count_drop(&mut sh.stats.dropped, DropReason::VrrpNoAccept);
                    }
                } else if !self.kernel_local.contains(&ip.daddr) && !ip.fragment && ip.l4.is_some() {
                    if !self.vip_gate.as_ref().is_none_or(VipGate::serves_replies) {
                        // The floating gateway is another director's: so are the replies.
                        return;
                    }
                    self.handle_reply(bytes, ip, csum, vnet_out, sh);
                }
            }
        }
    }

    /// The checksum state the forwarders act on: a forwarder that does not complete checksums
    /// takes a partial one for complete, as one that ignores the offload metadata does.
    fn csum_as_read(&self, vnet: &VnetHdr) -> Csum {
        match csum_state(vnet) {
            Csum::Partial if !self.complete_checksums => Csum::Complete,
            csum => csum,
        }
    }

    /// Whether this director serves `vip` now: always, unless VRRP gives it to another.
    fn holds(&self, vip: Ipv4Addr) -> bool {
        self.vip_gate.as_ref().is_none_or(|g| g.holds(vip))
    }

    fn accepts(&self) -> bool {
        self.vip_gate.as_ref().is_none_or(VipGate::accepts)
    }

    fn handle_arp(&mut self, side: usize, a: ArpRepr, sh: &mut Shared) {
        self.learn_and_flush(side, a.sender_ip, a.sender_mac, &mut sh.stats);
        let target = a.target_ip;
        let gateway = self.vip_gate.as_ref().and_then(VipGate::gateway);
        let floating_gateway = gateway == Some(target) && self.holds(target);
        if (sh.ipvs.is_vip(target) && self.holds(target))
            || floating_gateway
            || self.fullnat_local_addrs.contains(&target)
        {
            if let Some(reply) = arp::reply_to(&a, self.sides[side].iface.mac) {
                match self.sides[side].sock.send(VnetHdr::default(), &reply) {
                    Ok(()) => sh.stats.arp_answered += 1,
                    Err(_) => count_drop(&mut sh.stats.dropped, DropReason::SendFailed),
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_request(
        &mut self,
        side: usize,
        bytes: &[u8],
        mut ip: Ipv4Frame,
        mark: u32,
        csum: Csum,
        vnet_out: VnetHdr,
        sh: &mut Shared,
    ) {
        if ip.fragment {
            return count_drop(&mut sh.stats.dropped, DropReason::Fragment);
        }
        // ICMP etc.: not a service.
        let Some(packet) = packet_in(&ip) else { return };
        // Replies to this client go back the way the request came.
        self.learn_and_flush(side, ip.saddr, ip.src_mac, &mut sh.stats);
        let verdict = sh.ipvs.process_in_marked(&packet, mark, Instant::now());
        let (dest, dport, method, snat) = match verdict {
            InVerdict::NotService => return self.answer_as_local_stack(side, bytes, &ip, packet.proto, sh),
            InVerdict::Drop(reason) => {
                // `ip_vs_leave`: when nothing could be scheduled, the client is told at once.
                if matches!(
                    reason,
                    ipvs::DropReason::NoDestination | ipvs::DropReason::PortZeroNotPersistent
                ) {
                    self.send_error_to_client(bytes, &ip, icmp::ErrorKind::PortUnreachable, sh);
                }
                return count_drop(&mut sh.stats.dropped, DropReason::Ipvs(reason));
            }
            InVerdict::Forward {
                dest,
                dport,
                forward,
                snat,
                ..
            } => (dest, dport, forward, snat),
        };
        let to = self.side_towards(dest);
        let our_mac = self.sides[to].iface.mac;
        let mut out = bytes.to_vec();
        let forwarded = match method {
            Forward::Dr => forward::forward_dr(&mut out, &mut ip, csum, our_mac, Mac::UNSPECIFIED),
            Forward::Nat => {
                let rw = Rewrite {
                    saddr: ip.saddr,
                    sport: packet.sport,
                    daddr: dest,
                    dport,
                };
                forward::forward_rewrite(&mut out, &mut ip, csum, rw, our_mac, Mac::UNSPECIFIED)
            }
            Forward::FullNat => {
                let Some((laddr, lport)) = snat else {
                    return count_drop(&mut sh.stats.dropped, DropReason::FullnatNoLocalAddr);
                };
                let rw = Rewrite {
                    saddr: laddr,
                    sport: lport,
                    daddr: dest,
                    dport,
                };
                forward::forward_rewrite(&mut out, &mut ip, csum, rw, our_mac, Mac::UNSPECIFIED)
            }
            Forward::Tun => return self.forward_tunnel(bytes, ip, csum, vnet_out, dest, sh),
        };
        if let Err(reason) = forwarded {
            return count_drop(&mut sh.stats.dropped, reason);
        }
        self.send_to(to, dest, vnet_out, out, Carried::In, &mut sh.stats);
    }

    /// The side a packet to real server `dest` leaves on: the one whose link has its subnet
    /// (services of several modes may have servers on both), else the server side.
    fn side_towards(&self, dest: Ipv4Addr) -> usize {
        self.sides
            .iter()
            .position(|s| s.iface.addrs.iter().any(|n| n.contains(&dest)))
            .unwrap_or(self.server)
    }

    fn handle_reply(&mut self, bytes: &[u8], mut ip: Ipv4Frame, csum: Csum, vnet_out: VnetHdr, sh: &mut Shared) {
        let Some(packet) = packet_in(&ip) else { return };
        let out_packet: PacketOut = packet_out(&packet);
        let (saddr, sport, daddr, dport) = match sh.ipvs.process_out(&out_packet, Instant::now()) {
            OutVerdict::NotOurs => return,
            OutVerdict::Rewrite {
                saddr,
                sport,
                daddr,
                dport,
                ..
            } => (saddr, sport, daddr, dport),
        };
        let our_mac = self.sides[CLIENT].iface.mac;
        let mut out = bytes.to_vec();
        let rw = Rewrite {
            saddr,
            sport,
            daddr,
            dport,
        };
        if let Err(reason) = forward::forward_rewrite(&mut out, &mut ip, csum, rw, our_mac, Mac::UNSPECIFIED) {
            return count_drop(&mut sh.stats.dropped, reason);
        }
        self.send_to(CLIENT, daddr, vnet_out, out, Carried::Out, &mut sh.stats);
    }

    /// TUN (`ip_vs_tunnel_xmit`): `ensure_mtu_is_adequate` against the server side's MTU less
    /// the outer header, for a GSO super-frame per segment (`skb_gso_validate_network_len`),
    /// then each packet wrapped in IPIP. A super-frame whose segments fit is segmented here
    /// first: a virtio-net header cannot ask the kernel to segment an IPIP packet.
    fn forward_tunnel(
        &mut self,
        bytes: &[u8],
        ip: Ipv4Frame,
        csum: Csum,
        vnet: VnetHdr,
        dest: Ipv4Addr,
        sh: &mut Shared,
    ) {
        let to = self.side_towards(dest);
        let mtu = self.sides[to].mtu as usize;
        let packets: Vec<(Vec<u8>, Ipv4Frame, Csum)> = if csum == Csum::PartialGso {
            let Ok(network_len) = segment::segment_network_len(bytes, &ip, vnet.gso_size) else {
                return count_drop(&mut sh.stats.dropped, DropReason::GsoTunnel);
            };
            if network_len + IPIP_OVERHEAD > mtu {
                return self.too_big_for_tunnel(bytes, &ip, sh);
            }
            let Ok(segments) = segment::segment_tcp(bytes, &ip, vnet.gso_size) else {
                return count_drop(&mut sh.stats.dropped, DropReason::GsoTunnel);
            };
            segments
                .into_iter()
                .filter_map(|seg| match frame::parse(&seg) {
                    Ok(Frame::Ipv4(seg_ip)) => Some((seg, seg_ip, Csum::Complete)),
                    _ => None,
                })
                .collect()
        } else {
            if ip.total_len + IPIP_OVERHEAD > mtu {
                return self.too_big_for_tunnel(bytes, &ip, sh);
            }
            vec![(bytes.to_vec(), ip, csum)]
        };
        let Some(outer_src) = self.sides[to].iface.source_for(dest) else {
            return count_drop(&mut sh.stats.dropped, DropReason::NoSourceAddress);
        };
        let our_mac = self.sides[to].iface.mac;
        for (mut out, mut ip, csum) in packets {
            self.ip_id = self.ip_id.wrapping_add(1);
            let t = Tunnel {
                outer_src,
                outer_dst: dest,
                ip_id: self.ip_id,
                our_mac,
                next_hop_mac: Mac::UNSPECIFIED,
            };
            match forward::encapsulate_ipip(&mut out, &mut ip, csum, t) {
                Ok(frame) => self.send_to(to, dest, VnetHdr::default(), frame, Carried::In, &mut sh.stats),
                Err(reason) => count_drop(&mut sh.stats.dropped, reason),
            }
        }
    }

    /// An ICMP error that belongs to a connection is relayed (`relay.rs`);
    /// anything else is left to the director's kernel.
    fn handle_icmp(&mut self, bytes: &[u8], ip: Ipv4Frame, csum: Csum, sh: &mut Shared) {
        self.ip_id = self.ip_id.wrapping_add(1);
        let ctx = relay::Context {
            kernel_local: &self.kernel_local,
            client_mac: self.sides[CLIENT].iface.mac,
            server: &self.sides[self.server].iface,
            ip_id: self.ip_id,
            now: Instant::now(),
        };
        match relay::relay(bytes, &ip, csum, &mut sh.ipvs, &ctx) {
            Ok(r) if r.route == relay::Route::TunnelToClient && !self.may_originate(&r.frame, r.kind.header().0) => {
                count(&mut sh.stats.icmp_not_relayed, RATE_LIMITED);
            }
            Ok(r) => {
                count(&mut sh.stats.icmp_relayed, &r.counter_key());
                let side = if r.route.to_client() { CLIENT } else { self.server };
                let carried = if r.route.to_client() { Carried::Out } else { Carried::In };
                self.send_to(side, r.next_hop, VnetHdr::default(), r.frame, carried, &mut sh.stats);
            }
            Err(Skip::Malformed(m)) => count(&mut sh.stats.malformed, m.as_str()),
            Err(Skip::NotRelayed(why)) => count(&mut sh.stats.icmp_not_relayed, why.as_str()),
        }
    }

    /// Whether the kernel's ICMP rate limit lets an error of `icmp_type` out to the
    /// destination of `frame` (an Ethernet + IPv4 frame) now.
    fn may_originate(&mut self, frame: &[u8], icmp_type: u8) -> bool {
        let packet = EthernetFrame::new_checked(frame).and_then(|eth| Ipv4Packet::new_checked(eth.into_payload()));
        match packet {
            Some(p) => self.icmp_limit.allow(p.dst_addr(), icmp_type, Instant::now()),
            None => true,
        }
    }

    /// TUN: an inner packet too big for the tunnel (`ensure_mtu_is_adequate`):
    /// with DF, the client gets frag-needed from the VIP announcing the MTU
    /// less the outer header; without DF the kernel would fragment the outer
    /// packet, which we do not.
    fn too_big_for_tunnel(&mut self, bytes: &[u8], ip: &Ipv4Frame, sh: &mut Shared) {
        if !ip.dont_fragment {
            return count_drop(&mut sh.stats.dropped, DropReason::TunnelTooBigNoDf);
        }
        let mtu = (self.sides[self.server].mtu as usize).saturating_sub(IPIP_OVERHEAD) as u16;
        count_drop(&mut sh.stats.dropped, DropReason::TunnelTooBig);
        self.send_error_to_client(bytes, ip, icmp::ErrorKind::FragNeeded { mtu }, sh);
    }

    /// An error about the client's packet `bytes` from the VIP it was sent to,
    /// as the kernel's `icmp_send` answers for IPVS.
    /// What the director's stack does with a VIP packet IPVS leaves to it: TCP is
    /// reset, UDP to a port without a service is told port unreachable.
    fn answer_as_local_stack(&mut self, side: usize, bytes: &[u8], ip: &Ipv4Frame, proto: Proto, sh: &mut Shared) {
        match proto {
            Proto::Tcp => {
                let segment = &bytes[ip.l4_offset()..ip.l4_offset() + ip.l4_len()];
                let Some(frame) = reset::answer(segment, ip.daddr, ip.saddr, self.sides[side].iface.mac) else {
                    return;
                };
                sh.stats.resets_sent += 1;
                self.send_to(
                    side,
                    ip.saddr,
                    VnetHdr::default(),
                    frame,
                    Carried::Originated,
                    &mut sh.stats,
                );
            }
            // IPVS takes every UDP datagram for a service: this port has none.
            Proto::Udp => self.send_error_to_client(bytes, ip, icmp::ErrorKind::PortUnreachable, sh),
        }
    }

    fn send_error_to_client(&mut self, bytes: &[u8], ip: &Ipv4Frame, kind: icmp::ErrorKind, sh: &mut Shared) {
        let (icmp_type, code, rest) = kind.header();
        if !self.icmp_limit.allow(ip.saddr, icmp_type, Instant::now()) {
            return count(&mut sh.stats.icmp_not_relayed, RATE_LIMITED);
        }
        self.ip_id = self.ip_id.wrapping_add(1);
        let e = icmp::NewError {
            src_mac: self.sides[CLIENT].iface.mac,
            dst_mac: Mac::UNSPECIFIED,
            src: ip.daddr,
            dst: ip.saddr,
            ip_id: self.ip_id,
            icmp_type,
            code,
            rest,
        };
        let frame = icmp::build_error(&e, ip.packet(bytes));
        count(&mut sh.stats.icmp_sent, kind.as_str());
        self.send_to(
            CLIENT,
            ip.saddr,
            VnetHdr::default(),
            frame,
            Carried::Originated,
            &mut sh.stats,
        );
    }

    /// Sends `frame` to `next_hop` on `side`, resolving its MAC first if needed.
    fn send_to(
        &mut self,
        side: usize,
        next_hop: Ipv4Addr,
        vnet: VnetHdr,
        mut frame: Vec<u8>,
        carried: Carried,
        stats: &mut EngineStats,
    ) {
        if let Some(mac) = self.sides[side].neigh.lookup(next_hop) {
            ethernet::set_destination(&mut frame, mac);
            return self.send_frame(side, vnet, frame, carried, stats);
        }
        let queued = self.sides[side]
            .neigh
            .queue(next_hop, PendingFrame { vnet, frame, carried }, Instant::now());
        if queued.dropped_oldest > 0 {
            count_drops(
                &mut stats.dropped,
                DropReason::NeighbourQueueFull,
                queued.dropped_oldest,
            );
        }
        if queued.probe_now {
            self.send_arp_request(side, next_hop, stats);
        }
    }

    /// Records a neighbour and sends the frames that were waiting for it.
    fn learn_and_flush(&mut self, side: usize, ip: Ipv4Addr, mac: Mac, stats: &mut EngineStats) {
        for mut p in self.sides[side].neigh.learn(ip, mac) {
            ethernet::set_destination(&mut p.frame, mac);
            self.send_frame(side, p.vnet, p.frame, p.carried, stats);
        }
    }

    fn send_frame(&mut self, side: usize, vnet: VnetHdr, frame: Vec<u8>, carried: Carried, stats: &mut EngineStats) {
        match self.sides[side].sock.send(vnet, &frame) {
            Ok(()) => match carried {
                Carried::In => stats.forwarded_in += 1,
                Carried::Out => stats.forwarded_out += 1,
                Carried::Originated => {}
            },
            Err(_) => count_drop(&mut stats.dropped, DropReason::SendFailed),
        }
    }

    fn send_arp_request(&mut self, side: usize, target: Ipv4Addr, stats: &mut EngineStats) {
        let iface = &self.sides[side].iface;
        let Some(src) = iface.source_for(target) else {
            return count_drop(&mut stats.dropped, DropReason::NoSourceAddress);
        };
        let req = arp::request(iface.mac, src, target);
        match self.sides[side].sock.send(VnetHdr::default(), &req) {
            Ok(()) => stats.arp_requests_sent += 1,
            Err(_) => count_drop(&mut stats.dropped, DropReason::SendFailed),
        }
    }

    fn tick_neighbours(&mut self, now: Instant) {
        let mut stats = EngineStats::default();
        for side in 0..self.sides.len() {
            let tick = self.sides[side].neigh.tick(now);
            if tick.failed_frames > 0 {
                count_drops(&mut stats.dropped, DropReason::NeighbourFailed, tick.failed_frames);
            }
            for ip in tick.probes {
                self.send_arp_request(side, ip, &mut stats);
            }
        }
        if stats != EngineStats::default() {
            let mut sh = self.shared.lock().unwrap();
            sh.stats.arp_requests_sent += stats.arp_requests_sent;
            for (k, v) in stats.dropped {
                count_drops(&mut sh.stats.dropped, k, v);
            }
        }
    }
}

pub fn csum_state(vnet: &VnetHdr) -> Csum {
    match (vnet.needs_csum(), vnet.is_gso()) {
        (true, true) => Csum::PartialGso,
        (true, false) => Csum::Partial,
        (false, _) => Csum::Complete,
    }
}

pub fn packet_in(ip: &Ipv4Frame) -> Option<PacketIn> {
    let l4 = ip.l4?;
    let proto = Proto::from_number(ip.protocol.0)?;
    Some(PacketIn {
        proto,
        saddr: ip.saddr,
        sport: l4.sport,
        daddr: ip.daddr,
        dport: l4.dport,
        tcp: l4.tcp,
        len: ip.total_len as u32,
    })
}

fn packet_out(p: &PacketIn) -> PacketOut {
    ipvs::PacketOut {
        proto: p.proto,
        saddr: p.saddr,
        sport: p.sport,
        daddr: p.daddr,
        dport: p.dport,
        tcp: p.tcp,
        len: p.len,
    }
}
