//! One UDP request: a datagram out, the backend JSON back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use nix::sys::socket::{bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
use tokio::net::UdpSocket;

use super::{ConnKey, ConnectionMode, RequestError, RequestRecord, Run};
use crate::realserver::BackendReply;

/// Datagrams that are not the answer to the current request (late answers to
/// earlier, timed-out ones on a reused socket) skipped before giving up.
const MAX_STALE_REPLIES: usize = 64;
const RECV_BUFFER: usize = 4096;

/// Reused sockets of one worker, with their ordinals.
#[derive(Default)]
pub(super) struct Pool(HashMap<ConnKey, (UdpSocket, u32)>);

pub(super) async fn request(
    run: &Run,
    seq: u32,
    pool: &mut Pool,
    record: &mut RequestRecord,
) -> Result<(), RequestError> {
    let target = run.target(seq);
    let key = (target, run.bind_addr(seq));
    let (socket, ordinal) = match pool.0.remove(&key) {
        Some(entry) if run.spec.mode == ConnectionMode::KeepAlive => entry,
        _ => {
            let ordinal = run.connection_ordinal();
            record.connection = ordinal;
            (open(target, key.1).await?, ordinal)
        }
    };
    record.connection = ordinal;
    record.local = socket.local_addr().ok();
    let result = exchange(run, seq, &socket, record).await;
    if run.spec.mode == ConnectionMode::KeepAlive {
        pool.0.insert(key, (socket, ordinal));
    }
    result
}

async fn exchange(run: &Run, seq: u32, socket: &UdpSocket, record: &mut RequestRecord) -> Result<(), RequestError> {
    let io_err = |err: std::io::Error| RequestError::from_io(&err);
    let payload = format!("{} {} {}", run.spec.client, seq, run.spec.path);
    socket.send(payload.as_bytes()).await.map_err(io_err)?;
    let mut buf = vec![0u8; RECV_BUFFER];
    for _ in 0..MAX_STALE_REPLIES {
        // Connected socket: an ICMP port unreachable comes back as ECONNREFUSED here.
        let len = socket.recv(&mut buf).await.map_err(io_err)?;
        let Ok(reply) = serde_json::from_slice::<BackendReply>(&buf[..len]) else {
            continue;
        };
        if reply.request.as_deref() != Some(payload.as_str()) {
            continue;
        }
        record.backend = Some(reply.backend);
        record.seen_as = Some(reply.client);
        return match reply.status {
            Some(status) if !(200..300).contains(&status) => Err(RequestError::Http(status)),
            _ => Ok(()),
        };
    }
    Err(RequestError::Other(format!(
        "{MAX_STALE_REPLIES} datagrams, none answering this request"
    )))
}

/// A UDP socket connected to `target`, bound to `bind_to` if given: a pinned port with
/// SO_REUSEADDR, port 0 with IP_BIND_ADDRESS_NO_PORT (the port is picked at connect, as for
/// TCP). Created here, on the client's runtime.
async fn open(target: SocketAddr, bind_to: Option<SocketAddr>) -> Result<UdpSocket, RequestError> {
    let io_err = |err: std::io::Error| RequestError::from_io(&err);
    let family = if target.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd: OwnedFd = socket(
        family,
        SockType::Datagram,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|errno| io_err(errno.into()))?;
    let fixed_port = bind_to.is_some_and(|addr| addr.port() != 0);
    if let Some(addr) = bind_to {
        let option = if fixed_port {
            setsockopt(&fd, sockopt::ReuseAddr, &true)
        } else {
            setsockopt(&fd, sockopt::IpBindAddressNoPort, &true)
        };
        option.map_err(|errno| io_err(errno.into()))?;
        bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrStorage::from(addr))
            .map_err(|errno| RequestError::from_bind(addr, &errno.into()))?;
    }
    let socket = UdpSocket::from_std(std::net::UdpSocket::from(fd)).map_err(io_err)?;
    socket
        .connect(target)
        .await
        .map_err(|err| RequestError::from_connect(&err, fixed_port))?;
    Ok(socket)
}
