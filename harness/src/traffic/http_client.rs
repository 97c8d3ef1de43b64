//! One HTTP/1.1 request over a new or kept-alive TCP connection.
//!
//! A new connection per request asks for `Connection: close` and lets the server close
//! first, as clients of real HTTP/1.1 servers see: the server's end keeps the TIME_WAIT and
//! the client's port is free again once its socket is gone. A client that closed first would
//! hold each port it used for 60 s, and one address would run out after ~28 000 connections.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONNECTION, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use nix::sys::socket::{setsockopt, sockopt};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

use super::{ConnKey, ConnectionMode, RequestError, RequestRecord, Run};
use crate::realserver::BackendReply;

/// Kept-alive connections of one worker.
#[derive(Default)]
pub(super) struct Pool(HashMap<ConnKey, Connection>);

/// Which end closes a connection, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Close {
    /// Kept alive until the run ends; then the client closes it.
    ClientFirst,
    /// `Connection: close`: the server closes, the client closes on its FIN.
    ServerFirst,
    /// Pinned source port: SO_LINGER 0, so the client's close is a RST and the port is free at once.
    Reset,
}

impl Close {
    pub(super) fn for_run(run: &Run) -> Self {
        match (run.spec.source_port, run.spec.mode) {
            (Some(_), _) => Self::Reset,
            (None, ConnectionMode::New) => Self::ServerFirst,
            (None, ConnectionMode::KeepAlive) => Self::ClientFirst,
        }
    }
}

pub(super) struct Connection {
    sender: SendRequest<Full<Bytes>>,
    local: SocketAddr,
    ordinal: u32,
    close: Close,
    /// Drives the connection; for `ServerFirst`, hands the stream back once the exchange is done.
    driver: JoinHandle<Option<TcpStream>>,
}

impl Drop for Connection {
    /// Closes the socket even if a response is still pending (timeouts).
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Connection {
    /// Closes the connection and waits until the socket is gone. After a complete answer on a
    /// `ServerFirst` connection, that is after the server's FIN (or at `deadline`, when the
    /// server keeps it open). Otherwise at once: the next connection from a fixed source port
    /// can then bind and connect that port again.
    async fn close(mut self, answered: bool, deadline: Instant) {
        if self.close == Close::ServerFirst && answered {
            if let Ok(Ok(Some(stream))) = timeout_at(deadline, &mut self.driver).await {
                wait_for_fin(stream, deadline).await;
                return;
            }
        }
        self.driver.abort();
        let _ = (&mut self.driver).await;
    }
}

/// Reads to the end of the stream (the server's FIN), then drops it: the client's close is
/// then the passive one (CLOSE_WAIT → LAST_ACK) and leaves no TIME_WAIT on this side. A server
/// that keeps the connection past `deadline` is closed on: the answer was complete anyway.
async fn wait_for_fin(mut stream: TcpStream, deadline: Instant) {
    let mut scrap = [0u8; 512];
    let drained = async {
        while let Ok(read) = stream.read(&mut scrap).await {
            if read == 0 {
                break;
            }
        }
    };
    let _ = timeout_at(deadline, drained).await;
}

pub(super) async fn request(
    run: &Run,
    seq: u32,
    deadline: Instant,
    pool: &mut Pool,
    record: &mut RequestRecord,
) -> Result<(), RequestError> {
    let target = run.target(seq);
    let close = Close::for_run(run);
    let req = build_request(run, target, close)?;
    let key = (target, run.bind_addr(seq));
    let mut reused = match run.spec.mode {
        ConnectionMode::KeepAlive => pool.0.remove(&key).filter(|conn| !conn.sender.is_closed()),
        ConnectionMode::New => None,
    };
    // The server may have closed an idle connection meanwhile: then open a fresh one, as browsers do.
    if let Some(conn) = &mut reused {
        if conn.sender.ready().await.is_err() {
            reused = None;
        }
    }
    let mut conn = match reused {
        Some(conn) => conn,
        None => connect(run, key, close, record).await?,
    };
    record.connection = conn.ordinal;
    record.local = Some(conn.local);

    let outcome = exchange(req, &mut conn, record).await;
    match (run.spec.mode, &outcome) {
        // A transport error leaves the connection unusable: it is dropped (closed).
        (ConnectionMode::KeepAlive, Ok(_)) => {
            pool.0.insert(key, conn);
        }
        (ConnectionMode::KeepAlive, Err(_)) => {}
        (ConnectionMode::New, _) => conn.close(outcome.is_ok(), deadline).await,
    }
    outcome?
}

fn build_request(run: &Run, target: SocketAddr, close: Close) -> Result<Request<Full<Bytes>>, RequestError> {
    let body = run.spec.body.clone();
    let method = if body.is_empty() { Method::GET } else { Method::POST };
    let mut req = Request::builder()
        .method(method)
        .uri(run.spec.path.as_str())
        .header(HOST, target.to_string());
    if close == Close::ServerFirst {
        req = req.header(CONNECTION, "close");
    }
    req.body(Full::new(body))
        .map_err(|err| RequestError::Other(format!("bad request path {:?}: {err}", run.spec.path)))
}

/// Sends one request (a GET, or a POST with its body) over `conn` and reads the answer. The outer error is a transport
/// failure (the connection is broken); the inner one is about the answer itself.
async fn exchange(
    req: Request<Full<Bytes>>,
    conn: &mut Connection,
    record: &mut RequestRecord,
) -> Result<Result<(), RequestError>, RequestError> {
    let response = conn
        .sender
        .send_request(req)
        .await
        .map_err(|err| RequestError::from_hyper(&err))?;
    let status = response.status();
    let header_backend = response
        .headers()
        .get("x-backend")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|err| RequestError::from_hyper(&err))?
        .to_bytes();
    let reply = serde_json::from_slice::<BackendReply>(&body).ok();
    record.backend = reply.as_ref().map(|r| r.backend.clone()).or(header_backend);
    record.seen_as = reply.as_ref().map(|r| r.client);
    if !status.is_success() {
        return Ok(Err(RequestError::Http(status.as_u16())));
    }
    if reply.is_none() {
        return Ok(Err(RequestError::Other(
            "the answer is not a backend JSON reply".into(),
        )));
    }
    Ok(Ok(()))
}

/// A TCP socket for `target`, bound to `bind` if given. With a pinned port: SO_REUSEADDR and
/// SO_LINGER 0 (see [`Close::Reset`]). With port 0: IP_BIND_ADDRESS_NO_PORT, so the kernel
/// picks the port at connect time, free for this 4-tuple, as load generators bind: one port
/// then serves every destination at once instead of being held whole from bind on.
pub(super) fn source_socket(
    target: SocketAddr,
    bind: Option<SocketAddr>,
    close: Close,
) -> Result<TcpSocket, RequestError> {
    let io_err = |err: std::io::Error| RequestError::from_io(&err);
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(io_err)?;
    let Some(bind) = bind else {
        return Ok(socket);
    };
    if bind.port() == 0 {
        setsockopt(&socket, sockopt::IpBindAddressNoPort, &true).map_err(|errno| io_err(errno.into()))?;
    } else {
        socket.set_reuseaddr(true).map_err(io_err)?;
    }
    if close == Close::Reset {
        // Close with RST (SO_LINGER 0), as load generators that pin ports do. A normal
        // close puts the client's end in TIME_WAIT for 60 s, and the next connect from
        // the same ip:port to the same target fails with EADDRNOTAVAIL. The director's
        // entry sees the RST and goes to CLOSE: conn_reuse_mode then decides whether
        // the next SYN from that port is rescheduled or follows the old entry.
        socket.set_zero_linger().map_err(io_err)?;
    }
    socket.bind(bind).map_err(|err| RequestError::from_bind(bind, &err))?;
    Ok(socket)
}

async fn connect(
    run: &Run,
    key: ConnKey,
    close: Close,
    record: &mut RequestRecord,
) -> Result<Connection, RequestError> {
    let (target, bind) = key;
    // Every attempt gets an ordinal, so refused attempts are told apart too.
    let ordinal = run.connection_ordinal();
    record.connection = ordinal;
    let io_err = |err: std::io::Error| RequestError::from_io(&err);
    let socket = source_socket(target, bind, close)?;
    let stream = socket
        .connect(target)
        .await
        .map_err(|err| RequestError::from_connect(&err, run.spec.source_port.is_some()))?;
    let local = stream.local_addr().map_err(io_err)?;
    record.local = Some(local);
    // Requests are tiny; Nagle would only add delay.
    stream.set_nodelay(true).map_err(io_err)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| RequestError::from_hyper(&err))?;
    // The connection's errors surface through `sender`; the driver's own result adds nothing.
    let driver = tokio::spawn(async move {
        match close {
            // hyper would shut down its write side (FIN) once the answer is in: the client would close first.
            Close::ServerFirst => connection
                .without_shutdown()
                .await
                .ok()
                .map(|parts| parts.io.into_inner()),
            Close::ClientFirst | Close::Reset => {
                let _ = connection.await;
                None
            }
        }
    });
    Ok(Connection {
        sender,
        local,
        ordinal,
        close,
        driver,
    })
}
