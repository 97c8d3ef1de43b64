//! One HTTP/1.1 request over a new or kept-alive TCP connection.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HOST;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;

use super::{ConnKey, ConnectionMode, RequestError, RequestRecord, Run};
use crate::realserver::BackendReply;

/// Kept-alive connections of one worker.
#[derive(Default)]
pub(super) struct Pool(HashMap<ConnKey, Connection>);

pub(super) struct Connection {
    sender: SendRequest<Empty<Bytes>>,
    local: SocketAddr,
    ordinal: u32,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    /// Closes the socket even if a response is still pending (timeouts).
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Connection {
    /// Closes the socket and waits until it is closed: the task that owns it is gone
    /// once its handle resolves. The next connection from a fixed source port can
    /// then bind and connect that port again.
    async fn close(mut self) {
        self.driver.abort();
        let _ = (&mut self.driver).await;
    }
}

pub(super) async fn request(
    run: &Run,
    seq: u32,
    pool: &mut Pool,
    record: &mut RequestRecord,
) -> Result<(), RequestError> {
    let target = run.target(seq);
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
        None => connect(run, key, record).await?,
    };
    record.connection = conn.ordinal;
    record.local = Some(conn.local);

    let outcome = exchange(run, target, &mut conn, record).await;
    match (run.spec.mode, &outcome) {
        // A transport error leaves the connection unusable: it is dropped (closed).
        (ConnectionMode::KeepAlive, Ok(_)) => {
            pool.0.insert(key, conn);
        }
        (ConnectionMode::KeepAlive, Err(_)) => {}
        (ConnectionMode::New, _) => conn.close().await,
    }
    outcome?
}

/// Sends one GET over `conn` and reads the answer. The outer error is a transport
/// failure (the connection is broken); the inner one is about the answer itself.
async fn exchange(
    run: &Run,
    target: SocketAddr,
    conn: &mut Connection,
    record: &mut RequestRecord,
) -> Result<Result<(), RequestError>, RequestError> {
    let req = Request::get(run.spec.path.as_str())
        .header(HOST, target.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|err| RequestError::Other(format!("bad request path {:?}: {err}", run.spec.path)));
    let req = match req {
        Ok(req) => req,
        Err(err) => return Ok(Err(err)),
    };
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

async fn connect(run: &Run, key: ConnKey, record: &mut RequestRecord) -> Result<Connection, RequestError> {
    let (target, bind) = key;
    // Every attempt gets an ordinal, so refused attempts are told apart too.
    let ordinal = run.connection_ordinal();
    record.connection = ordinal;
    let io_err = |err: std::io::Error| RequestError::from_io(&err);
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(io_err)?;
    if let Some(bind) = bind {
        if run.spec.source_port.is_some() {
            socket.set_reuseaddr(true).map_err(io_err)?;
            // Close with RST (SO_LINGER 0), as load generators that pin ports do. A normal
            // close puts the client's end in TIME_WAIT for 60 s, and the next connect from
            // the same ip:port to the same target fails with EADDRNOTAVAIL. The director's
            // entry sees the RST and goes to CLOSE: conn_reuse_mode then decides whether
            // the next SYN from that port is rescheduled or follows the old entry.
            socket.set_zero_linger().map_err(io_err)?;
        }
        socket
            .bind(bind)
            .map_err(|err| RequestError::Other(format!("cannot bind source {bind}: {err}")))?;
    }
    let stream = socket.connect(target).await.map_err(io_err)?;
    let local = stream.local_addr().map_err(io_err)?;
    record.local = Some(local);
    // Requests are tiny; Nagle would only add delay.
    stream.set_nodelay(true).map_err(io_err)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| RequestError::from_hyper(&err))?;
    // The connection's errors surface through `sender`; the driver's own result adds nothing.
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Connection {
        sender,
        local,
        ordinal,
        driver,
    })
}
