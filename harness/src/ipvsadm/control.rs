//! The control socket of a kept lab: `ipvsadm.sock` in the lab's run directory, served by the
//! lab's owner (the process that runs its engines), asked by `lvslab ipvsadm`.
//!
//! One request and one reply per connection, each one JSON line carrying the protocol
//! version. The socket is root's (mode 0600, and the peer's uid is checked); it goes with the
//! run directory when the lab comes down. Every read and write has a deadline, so a stuck
//! peer costs the other side a few seconds, never a hang.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::director::kernel::engine::DestCmd;
use crate::director::{DirectorError, Engine, EngineKind, ServiceKey};
use crate::ipvs::{DestConfig, IpvsError, IpvsSnapshot};

/// Bumped when a request or reply changes shape; both sides refuse another version.
pub const PROTOCOL_VERSION: u32 = 1;
/// The socket's name in the run directory.
pub const SOCKET_NAME: &str = "ipvsadm.sock";
/// How long either side waits for the other's line.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// A request is a few hundred bytes; anything longer is not ours.
const MAX_REQUEST: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    #[serde(flatten)]
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The lab's directors and their engines, in scenario order.
    Directors,
    Snapshot {
        director: String,
    },
    Dest {
        director: String,
        cmd: DestCmd,
        service: ServiceKey,
        dest: DestConfig,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub version: u32,
    #[serde(flatten)]
    pub reply: Reply,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Directors {
        directors: Vec<(String, EngineKind)>,
    },
    Snapshot {
        snapshot: Box<IpvsSnapshot>,
    },
    Done,
    /// IPVS refused, with the errno the kernel would have given (ipvsadm words it), and the
    /// engine's own sentence.
    Refused {
        errno: i32,
        detail: String,
    },
    /// Not a request this owner can answer (bad version, unknown director, malformed).
    Error {
        message: String,
    },
}

/// The socket's path for a run.
pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join(SOCKET_NAME)
}

/// The owner's end, bound for as long as the lab is kept.
pub struct ControlSocket {
    listener: tokio::net::UnixListener,
}

impl ControlSocket {
    /// Binds `ipvsadm.sock` in `run_dir` (root's only). Call inside the runtime.
    pub fn bind(run_dir: &Path) -> std::io::Result<ControlSocket> {
        std::fs::create_dir_all(run_dir)?;
        let path = socket_path(run_dir);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = tokio::net::UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(ControlSocket { listener })
    }

    /// Waits for the next request and answers it with `engines`; a broken or slow peer is
    /// dropped after `TIMEOUT`.
    pub async fn answer_next(&self, engines: &mut [(String, Box<dyn Engine>)]) {
        let Ok((stream, _)) = self.listener.accept().await else {
            return;
        };
        // Only root (or whoever runs the owner) may read or change the director.
        let allowed = stream
            .peer_cred()
            .map(|c| c.uid() == 0 || c.uid() == nix::unistd::geteuid().as_raw())
            .unwrap_or(false);
        let _ = tokio::time::timeout(TIMEOUT, serve(stream, allowed, engines)).await;
    }
}

async fn serve(
    stream: tokio::net::UnixStream,
    allowed: bool,
    engines: &mut [(String, Box<dyn Engine>)],
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::io::BufReader::new(read.take(MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let reply = match serde_json::from_str::<Request>(&line) {
        _ if !allowed => Reply::Error {
            message: "only root may use a lab's control socket".into(),
        },
        Ok(r) if r.version != PROTOCOL_VERSION => Reply::Error {
            message: format!(
                "the lab speaks control protocol {PROTOCOL_VERSION}, the request {}: use the same lvslab for up and ipvsadm",
                r.version
            ),
        },
        Ok(r) => handle(r.op, engines),
        Err(e) => Reply::Error {
            message: format!("not a control request: {e}"),
        },
    };
    let mut text = serde_json::to_string(&Response {
        version: PROTOCOL_VERSION,
        reply,
    })
    .map_err(std::io::Error::other)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}

/// One request against the owner's engines.
pub fn handle(op: Op, engines: &mut [(String, Box<dyn Engine>)]) -> Reply {
    let find = |engines: &mut [(String, Box<dyn Engine>)], name: &str| engines.iter().position(|(n, _)| n == name);
    match op {
        Op::Directors => Reply::Directors {
            directors: engines.iter().map(|(n, e)| (n.clone(), e.kind())).collect(),
        },
        Op::Snapshot { director } => match find(engines, &director) {
            Some(i) => match engines[i].1.snapshot() {
                Ok(s) => Reply::Snapshot { snapshot: Box::new(s) },
                Err(e) => refused(&e),
            },
            None => no_director(&director, engines),
        },
        Op::Dest {
            director,
            cmd,
            service,
            dest,
        } => match find(engines, &director) {
            Some(i) => {
                let engine = &mut engines[i].1;
                let addr = std::net::SocketAddrV4::new(dest.addr, dest.port);
                let done = match cmd {
                    DestCmd::Add => engine.add_dest(service, dest),
                    DestCmd::Edit => engine.edit_dest(service, dest),
                    DestCmd::Delete => engine.remove_dest(service, addr),
                };
                match done {
                    Ok(()) => Reply::Done,
                    Err(e) => refused(&e),
                }
            }
            None => no_director(&director, engines),
        },
    }
}

fn no_director(name: &str, engines: &[(String, Box<dyn Engine>)]) -> Reply {
    let names: Vec<&str> = engines.iter().map(|(n, _)| n.as_str()).collect();
    Reply::Error {
        message: format!("no director {name} runs in this lab (directors: {})", names.join(", ")),
    }
}

/// An engine's refusal as the errno kernel IPVS gives for it.
fn refused(e: &DirectorError) -> Reply {
    let errno = match e {
        DirectorError::NoService(_) => libc::ESRCH,
        DirectorError::NoDest { .. } => libc::ENOENT,
        DirectorError::Refused { source, .. } => match source {
            IpvsError::NoSuchService(_) => libc::ESRCH,
            IpvsError::NoSuchDest(..) => libc::ENOENT,
            IpvsError::DestExists(..) | IpvsError::ServiceExists(_) => libc::EEXIST,
            IpvsError::ThresholdRange { .. } => libc::ERANGE,
            IpvsError::PortZeroNotPersistent | IpvsError::BadPersistence => libc::EINVAL,
        },
        DirectorError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        _ => libc::EINVAL,
    };
    Reply::Refused {
        errno,
        detail: e.to_string(),
    }
}

/// Why the owner could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("its control socket {0} is missing (was the lab kept by an older lvslab?)")]
    NoSocket(PathBuf),
    #[error("its owner does not answer on {path}: {source}")]
    Unreachable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("its owner gave no answer within {} s", TIMEOUT.as_secs())]
    Timeout,
    #[error("its owner's answer is not understood: {0}")]
    Garbled(String),
}

/// Asks the owner of the lab whose run directory is `run_dir`; blocking, bounded by `TIMEOUT`.
pub fn ask(run_dir: &Path, op: Op) -> Result<Reply, AskError> {
    let path = socket_path(run_dir);
    let unreachable = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => AskError::Timeout,
        _ => AskError::Unreachable {
            path: path.clone(),
            source,
        },
    };
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(AskError::NoSocket(path)),
        Err(e) => return Err(unreachable(e)),
    };
    stream.set_read_timeout(Some(TIMEOUT)).map_err(unreachable)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(unreachable)?;
    let mut line = serde_json::to_string(&Request {
        version: PROTOCOL_VERSION,
        op,
    })
    .map_err(|e| AskError::Garbled(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(unreachable)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).map_err(unreachable)?;
    if answer.is_empty() {
        return Err(AskError::Garbled(
            "the owner closed the connection without a reply".into(),
        ));
    }
    let response: Response = serde_json::from_str(&answer).map_err(|e| AskError::Garbled(e.to_string()))?;
    if response.version != PROTOCOL_VERSION {
        return Err(AskError::Garbled(format!(
            "control protocol {} (this lvslab speaks {PROTOCOL_VERSION})",
            response.version
        )));
    }
    Ok(response.reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_are_one_json_line_with_their_version() {
        let request = Request {
            version: PROTOCOL_VERSION,
            op: Op::Snapshot {
                director: "director".into(),
            },
        };
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(text, r#"{"version":1,"op":"snapshot","director":"director"}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), request);
        let reply = Response {
            version: PROTOCOL_VERSION,
            reply: Reply::Refused {
                errno: libc::ENOENT,
                detail: "x".into(),
            },
        };
        let text = serde_json::to_string(&reply).unwrap();
        assert!(!text.contains('\n'));
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), reply);
    }

    #[test]
    fn an_unknown_director_is_named_with_the_ones_there_are() {
        let mut engines: Vec<(String, Box<dyn Engine>)> = Vec::new();
        let reply = handle(
            Op::Snapshot {
                director: "dir9".into(),
            },
            &mut engines,
        );
        assert!(matches!(reply, Reply::Error { message } if message.contains("no director dir9")));
    }

    #[tokio::test]
    async fn a_silent_owner_is_a_timeout_and_a_missing_socket_says_so() {
        let dir = tempfile::tempdir().unwrap();
        match ask(dir.path(), Op::Directors) {
            Err(AskError::NoSocket(p)) => assert!(p.ends_with(SOCKET_NAME)),
            other => panic!("{other:?}"),
        }
        // Bound but never answered: the asker gives up after TIMEOUT instead of hanging.
        let _listener = std::os::unix::net::UnixListener::bind(socket_path(dir.path())).unwrap();
        let started = std::time::Instant::now();
        let path = dir.path().to_path_buf();
        let result = tokio::task::spawn_blocking(move || ask(&path, Op::Directors))
            .await
            .unwrap();
        assert!(matches!(result, Err(AskError::Timeout)), "{result:?}");
        assert!(started.elapsed() < TIMEOUT + Duration::from_secs(2));
    }

    #[tokio::test]
    async fn the_owner_answers_over_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = ControlSocket::bind(dir.path()).unwrap();
        let mode = std::fs::metadata(socket_path(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let path = dir.path().to_path_buf();
        let asked = tokio::task::spawn_blocking(move || ask(&path, Op::Directors));
        let mut engines: Vec<(String, Box<dyn Engine>)> = Vec::new();
        socket.answer_next(&mut engines).await;
        let reply = asked.await.unwrap().unwrap();
        assert_eq!(reply, Reply::Directors { directors: vec![] });
    }
}
