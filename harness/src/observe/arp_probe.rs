//! Who answers ARP for an address: from a host, broadcast "who has <target>?" on one
//! interface with an AF_PACKET socket and collect every MAC that replies within a window.
//! Several MACs, or a real server's MAC, for a VIP is ARP flux: clients bypass the director.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use tokio::time::Instant;

use super::error::ObserveError;
use super::host::{dump_addresses, dump_links};
use crate::diagnose::evidence::ArpProbe;
use crate::lab;
use crate::sys::{packet, socket};
use crate::wire::{arp, ethernet, ArpOperation, ArpRepr, EtherType, EthernetFrame, Mac};

/// Requests sent, spread evenly over the window, in case one is lost on a real network.
const REQUESTS: u32 = 3;

const ETH_P_ARP: u16 = libc::ETH_P_ARP as u16;

/// From `host`, asks on `iface` who has `target` and returns every distinct MAC that
/// answered within `window`, in arrival order. The request's sender is the interface's
/// first IPv4 address and MAC. Returns when the window ends, whatever arrived.
pub async fn arp_probe(
    host: &lab::Host,
    iface: &str,
    target: Ipv4Addr,
    window: Duration,
) -> Result<ArpProbe, ObserveError> {
    let name = host.name().to_string();
    let links = dump_links(&name, host.rtnl()).await?;
    let Some((index, link)) = links.iter().find(|(_, l)| l.name == iface) else {
        return Err(ObserveError::NoSuchIface {
            host: name,
            iface: iface.to_string(),
        });
    };
    let cannot = |why: &str| ObserveError::CannotArp {
        host: name.clone(),
        iface: iface.to_string(),
        why: why.to_string(),
    };
    let Some(mac) = link.mac else {
        return Err(cannot("it has no Ethernet address"));
    };
    let addresses = dump_addresses(&name, host.rtnl(), &links).await?;
    let Some(source) = addresses.iter().find(|(i, _)| i == index).map(|(_, a)| a.net.addr()) else {
        return Err(cannot("it has no IPv4 address to send from"));
    };
    let index = *index;
    let step = format!("ARP for {target} on {iface}");
    // Spawned on the host's runtime: the socket is created on its thread, so in its namespace.
    let task = host
        .runtime()
        .spawn(async move { probe(index, mac, source, target, window).await });
    let replies = match task.await {
        Ok(result) => result.map_err(|e| ObserveError::os(&name, step, e))?,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => {
            return Err(ObserveError::os(
                &name,
                step,
                io::Error::other("namespace worker stopped"),
            ))
        }
    };
    Ok(ArpProbe { from: name, replies })
}

async fn probe(ifindex: u32, mac: Mac, source: Ipv4Addr, target: Ipv4Addr, window: Duration) -> io::Result<Vec<Mac>> {
    let fd = packet_socket(ifindex)?;
    let socket = socket::register_readable(fd)?;
    let request = arp_request_frame(mac, source, target);
    let start = Instant::now();
    let deadline = start + window;
    let mut sent = 0u32;
    let mut replies: Vec<Mac> = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(replies);
        }
        let next_send = start + window * sent / REQUESTS;
        if sent < REQUESTS && now >= next_send {
            send(socket.get_ref(), &request)?;
            sent += 1;
            continue;
        }
        let wake = if sent < REQUESTS {
            next_send.min(deadline)
        } else {
            deadline
        };
        tokio::select! {
            ready = socket.readable() => {
                let mut guard = ready?;
                match guard.try_io(|fd| recv(fd.get_ref(), &mut buf)) {
                    Ok(Ok(Some(len))) => {
                        if let Some(answer) = arp_reply_sender(&buf[..len], mac, target) {
                            if !replies.contains(&answer) {
                                replies.push(answer);
                            }
                        }
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_would_block) => {}
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// A non-blocking AF_PACKET socket receiving ARP frames of one interface.
fn packet_socket(ifindex: u32) -> io::Result<OwnedFd> {
    let protocol = i32::from(ETH_P_ARP.to_be());
    let fd = socket::socket(
        libc::AF_PACKET,
        libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        protocol,
    )?;
    packet::bind(&fd, ifindex, ETH_P_ARP)?;
    Ok(fd)
}

fn send(fd: &OwnedFd, frame: &[u8]) -> io::Result<()> {
    socket::send(fd.as_fd(), frame).map(drop)
}

/// One frame, or `None` for a frame this host sent itself (packet sockets see those too).
fn recv(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let (n, pkttype) = packet::recv_from(fd, buf)?;
    Ok((pkttype != libc::PACKET_OUTGOING).then_some(n))
}

/// Broadcast "who has `target`? tell `source` (`mac`)", padded to the minimum frame size.
pub fn arp_request_frame(mac: Mac, source: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut frame = arp::request(mac, source, target);
    ethernet::pad_to_minimum(&mut frame);
    frame
}

/// The MAC claiming `target` if `frame` is an ARP reply for it addressed to `own` (or
/// broadcast); `None` for anything else.
pub fn arp_reply_sender(frame: &[u8], own: Mac, target: Ipv4Addr) -> Option<Mac> {
    let eth = EthernetFrame::new_checked(frame)?;
    if eth.ethertype() != EtherType::ARP || (eth.destination() != own && eth.destination() != Mac::BROADCAST) {
        return None;
    }
    let arp = ArpRepr::parse(eth.payload()).ok()??;
    (arp.operation == ArpOperation::Reply && arp.sender_ip == target).then_some(arp.sender_mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{ArpEthIpv4Packet, ArpOperation as Op, EtherType as EthType, Ethernet2Header};

    const CLIENT: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const SERVER: Mac = Mac([2, 0, 0, 0, 0, 0x0b]);
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
    const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

    fn reply(from: Mac, claimed: Ipv4Addr, to: Mac) -> Vec<u8> {
        let eth = Ethernet2Header {
            source: from.0,
            destination: to.0,
            ether_type: EthType::ARP,
        };
        let arp = ArpEthIpv4Packet {
            operation: Op::REPLY,
            sender_mac: from.0,
            sender_ipv4: claimed.octets(),
            target_mac: to.0,
            target_ipv4: CLIENT_IP.octets(),
        };
        [eth.to_bytes().as_slice(), arp.to_bytes().as_slice()].concat()
    }

    #[test]
    fn request_frame_is_a_padded_broadcast_who_has() {
        let frame = arp_request_frame(CLIENT, CLIENT_IP, VIP);
        assert_eq!(frame.len(), ethernet::MIN_FRAME_LEN);
        let (eth, payload) = Ethernet2Header::from_slice(&frame).unwrap();
        assert_eq!(
            (eth.destination, eth.source, eth.ether_type),
            ([0xff; 6], CLIENT.0, EthType::ARP)
        );
        let arp = etherparse::ArpPacket::from_slice(payload)
            .unwrap()
            .try_eth_ipv4()
            .unwrap();
        assert_eq!(arp.operation, Op::REQUEST);
        assert_eq!((arp.sender_ipv4_addr(), arp.target_ipv4_addr()), (CLIENT_IP, VIP));
        // Our own request is not an answer.
        assert_eq!(arp_reply_sender(&frame, CLIENT, VIP), None);
    }

    #[test]
    fn only_replies_for_the_target_to_us_count() {
        assert_eq!(arp_reply_sender(&reply(SERVER, VIP, CLIENT), CLIENT, VIP), Some(SERVER));
        assert_eq!(
            arp_reply_sender(&reply(SERVER, VIP, Mac([0xff; 6])), CLIENT, VIP),
            Some(SERVER)
        );
        assert_eq!(
            arp_reply_sender(&reply(SERVER, Ipv4Addr::new(192, 0, 2, 7), CLIENT), CLIENT, VIP),
            None
        );
        assert_eq!(
            arp_reply_sender(&reply(SERVER, VIP, Mac([2, 9, 9, 9, 9, 9])), CLIENT, VIP),
            None
        );
        assert_eq!(
            arp_reply_sender(&reply(SERVER, VIP, CLIENT)[..20], CLIENT, VIP),
            None,
            "truncated"
        );
    }
}
