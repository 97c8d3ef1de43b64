//! UDP server: answers each datagram with the backend JSON.
//!
//! Bound to the wildcard address with IP_PKTINFO: each datagram tells which
//! local address it was sent to, and the reply is sent *from* that address.
//! This works for every address the host holds, including a VIP on lo or
//! tunl0 that is added after the server started, which binding one socket
//! per address could not promise.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::{Proto, ReadyTx, ServeCtx, ServerError, Stop, StopRx};

/// Longest request datagram echoed back in `request`.
const MAX_ECHO: usize = 256;
const RECV_BUFFER: usize = 2048;
/// Pause after a receive error, so the loop does not spin.
const RECV_ERROR_BACKOFF: Duration = Duration::from_millis(20);

pub(crate) async fn run(bind: SocketAddr, ctx: ServeCtx, ready: ReadyTx, mut stop: StopRx) {
    let socket = match bind_with_pktinfo(bind, &ctx.name).await {
        Ok((socket, local)) => {
            if ready.send(Ok(local)).is_err() {
                return;
            }
            Arc::new(socket)
        }
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let port = bind.port();
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut replies = JoinSet::new();
    let how = loop {
        tokio::select! {
            how = &mut stop => break how.unwrap_or(Stop::Abort),
            received = socket.async_io(Interest::READABLE, || recv_with_destination(&socket, &mut buf)) => {
                match received {
                    Ok((len, peer, destination)) => {
                        let request = std::str::from_utf8(&buf[..len]).ok()
                            .filter(|text| text.len() <= MAX_ECHO)
                            .map(str::to_owned);
                        let local = destination.map(|ip| SocketAddrV4::new(ip, port));
                        replies.spawn(reply(socket.clone(), ctx.clone(), peer, local, request));
                    }
                    Err(_) => tokio::time::sleep(RECV_ERROR_BACKOFF).await,
                }
            }
            Some(_) = replies.join_next(), if !replies.is_empty() => {}
        }
    };
    replies.shutdown().await;
    // No connections to drain: the socket closes now either way.
    drop(socket);
    if let Stop::Drain(closed) = how {
        let _ = closed.send(());
    }
}

async fn bind_with_pktinfo(bind: SocketAddr, name: &str) -> Result<(UdpSocket, SocketAddr), ServerError> {
    let bind_error = |source| ServerError::Bind {
        name: name.to_owned(),
        proto: Proto::Udp,
        addr: bind,
        source,
    };
    let socket = UdpSocket::bind(bind).await.map_err(bind_error)?;
    let local = socket.local_addr().map_err(bind_error)?;
    setsockopt(&socket, sockopt::Ipv4PacketInfo, &true).map_err(|errno| ServerError::Socket {
        name: name.to_owned(),
        what: "set IP_PKTINFO",
        source: errno.into(),
    })?;
    Ok((socket, local))
}

/// One datagram: its length, sender and the local address it was sent to.
fn recv_with_destination(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4, Option<Ipv4Addr>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg_buffer = nix::cmsg_space!(libc::in_pktinfo);
    let msg = recvmsg::<SockaddrIn>(socket.as_raw_fd(), &mut iov, Some(&mut cmsg_buffer), MsgFlags::empty())?;
    let peer = msg
        .address
        .map(SocketAddrV4::from)
        .ok_or_else(|| io::Error::other("datagram without a sender address"))?;
    let destination = msg.cmsgs()?.find_map(|cmsg| match cmsg {
        ControlMessageOwned::Ipv4PacketInfo(info) => Some(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr))),
        _ => None,
    });
    Ok((msg.bytes, peer, destination))
}

async fn reply(
    socket: Arc<UdpSocket>,
    ctx: ServeCtx,
    peer: SocketAddrV4,
    local: Option<SocketAddrV4>,
    request: Option<String>,
) {
    let fallback = socket.local_addr().ok();
    let Some(local_addr) = local.map(SocketAddr::V4).or(fallback) else {
        return;
    };
    let mut answer = ctx.answer(SocketAddr::V4(peer), local_addr).await;
    answer.request = request;
    let payload = answer.to_json();
    let source = local.map(|l| *l.ip());
    // A lost reply is what UDP does; the client's timeout reports it.
    let _ = socket
        .async_io(Interest::WRITABLE, || send_from(&socket, &payload, peer, source))
        .await;
}

/// Sends `payload` to `peer` with `source` as the source address (the
/// address the request was sent to), via IP_PKTINFO.
fn send_from(socket: &UdpSocket, payload: &[u8], peer: SocketAddrV4, source: Option<Ipv4Addr>) -> io::Result<usize> {
    let iov = [IoSlice::new(payload)];
    let destination = SockaddrIn::from(peer);
    let sent = match source {
        Some(ip) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(ip).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            sendmsg(
                socket.as_raw_fd(),
                &iov,
                &[ControlMessage::Ipv4PacketInfo(&info)],
                MsgFlags::empty(),
                Some(&destination),
            )
        }
        None => sendmsg(socket.as_raw_fd(), &iov, &[], MsgFlags::empty(), Some(&destination)),
    };
    Ok(sent?)
}
