//! HTTP/1.1 server (keep-alive) answering with its own name.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::{Proto, ReadyTx, ServeCtx, ServerError, Stop, StopRx};

/// Pause after an accept error such as EMFILE, so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(20);

pub(crate) async fn run(bind: SocketAddr, ctx: ServeCtx, ready: ReadyTx, mut stop: StopRx) {
    // Bound here, on the namespace runtime, so the socket lives in its namespace.
    let listener = match TcpListener::bind(bind)
        .await
        .and_then(|l| l.local_addr().map(|a| (l, a)))
    {
        Ok((listener, local)) => {
            if ready.send(Ok(local)).is_err() {
                return; // the caller gave up waiting
            }
            listener
        }
        Err(source) => {
            let _ = ready.send(Err(ServerError::Bind {
                name: ctx.name.clone(),
                proto: Proto::Tcp,
                addr: bind,
                source,
            }));
            return;
        }
    };
    let mut connections = JoinSet::new();
    let how = loop {
        tokio::select! {
            how = &mut stop => break how.unwrap_or(Stop::Abort),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, ctx.clone()));
                }
                Err(_) => tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };
    drop(listener);
    if let Stop::Drain(closed) = how {
        let _ = closed.send(());
        while connections.join_next().await.is_some() {}
    }
    // Aborts the open keep-alive connections.
    connections.shutdown().await;
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, ctx: ServeCtx) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let service = service_fn(move |req: Request<Incoming>| {
        let ctx = ctx.clone();
        async move {
            // The whole body first (a POST's): an answer before it would close on unread data,
            // which the kernel turns into a reset.
            if req.into_body().collect().await.is_err() {
                return Ok::<_, Infallible>(bad_request());
            }
            Ok(respond(&ctx, peer, local).await)
        }
    });
    // A client that goes away mid-request is normal here; nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn respond(ctx: &ServeCtx, peer: SocketAddr, local: SocketAddr) -> Response<Full<Bytes>> {
    let reply = ctx.answer(peer, local).await;
    let status = match reply.status {
        Some(code) => StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        None => StatusCode::OK,
    };
    let mut response = Response::new(Full::new(Bytes::from(reply.to_json())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Names come from scenario files; one that is not a valid header value is left out of the header only.
    if let Ok(name) = HeaderValue::from_str(&ctx.name) {
        headers.insert("x-backend", name);
    }
    response
}

/// The body could not be read (the client went away mid-request).
fn bad_request() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}
