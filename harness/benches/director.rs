//! Packets per second through the embedded director's parse + rewrite path
//! on synthetic frames (no sockets: this measures the userspace work per
//! frame). Run: `cargo bench -p lvslab --bench director`.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use lvslab::director::embedded::forward::{self, Csum, Rewrite, Tunnel};
use lvslab::director::embedded::frame::{self, Frame};

const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x01];
const RS_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x21];
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 21);
const MEASURE_FOR: Duration = Duration::from_millis(500);

fn request(payload_len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(CLIENT.octets(), VIP.octets(), 64)
        .tcp(40000, 80, 1, 64240)
        .ack(1)
        .psh()
        .write(&mut f, &vec![b'x'; payload_len])
        .unwrap();
    f
}

/// Runs `step` on a fresh copy of `template` until MEASURE_FOR elapses; frames/s.
fn measure(template: &[u8], mut step: impl FnMut(&mut Vec<u8>) -> bool) -> f64 {
    let mut buf = Vec::with_capacity(template.len() + 64);
    let mut frames = 0u64;
    let start = Instant::now();
    while start.elapsed() < MEASURE_FOR {
        for _ in 0..1024 {
            buf.clear();
            buf.extend_from_slice(template);
            assert!(step(&mut buf));
            black_box(&buf);
        }
        frames += 1024;
    }
    frames as f64 / start.elapsed().as_secs_f64()
}

fn parsed(buf: &[u8]) -> frame::Ipv4Frame {
    match frame::parse(buf) {
        Ok(Frame::Ipv4(ip)) => ip,
        other => panic!("bench frame does not parse: {other:?}"),
    }
}

fn main() {
    for payload in [0usize, 512, 1400] {
        let template = request(payload);
        let dr_complete = measure(&template, |b| {
            let mut ip = parsed(b);
            forward::forward_dr(b, &mut ip, Csum::Complete, DIRECTOR_MAC, RS_MAC)
        });
        let dr_partial = measure(&template, |b| {
            let mut ip = parsed(b);
            forward::forward_dr(b, &mut ip, Csum::Partial, DIRECTOR_MAC, RS_MAC)
        });
        let rw = Rewrite {
            saddr: CLIENT,
            sport: 40000,
            daddr: RIP,
            dport: 8080,
        };
        let nat_incremental = measure(&template, |b| {
            let mut ip = parsed(b);
            forward::forward_rewrite(b, &mut ip, Csum::Complete, rw, DIRECTOR_MAC, RS_MAC)
        });
        let nat_partial = measure(&template, |b| {
            let mut ip = parsed(b);
            forward::forward_rewrite(b, &mut ip, Csum::Partial, rw, DIRECTOR_MAC, RS_MAC)
        });
        let t = Tunnel {
            outer_src: Ipv4Addr::new(10, 0, 0, 1),
            outer_dst: RIP,
            ip_id: 1,
            our_mac: DIRECTOR_MAC,
            next_hop_mac: RS_MAC,
        };
        let tun = measure(&template, |b| {
            let mut ip = parsed(b);
            match forward::encapsulate_ipip(b, &mut ip, Csum::Partial, t) {
                Some(out) => {
                    black_box(out);
                    true
                }
                None => false,
            }
        });
        println!(
            "payload {payload:>4} B: DR {:>6.2} Mpps | DR+csum {:>6.2} | NAT incr {:>6.2} | NAT+csum {:>6.2} | TUN+csum {:>6.2}",
            dr_complete / 1e6,
            dr_partial / 1e6,
            nat_incremental / 1e6,
            nat_partial / 1e6,
            tun / 1e6
        );
    }
}
