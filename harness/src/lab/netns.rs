//! One network namespace = one worker thread that created it with `unshare` and stays in it,
//! driving a current-thread tokio runtime. Sockets made by tasks spawned there (including the
//! namespace's rtnetlink connection) belong to the namespace.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{setns, unshare, CloneFlags};
use tokio::sync::oneshot;

/// How long teardown waits for a worker to stop before leaving it detached.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

pub(crate) struct NsWorker {
    label: String,
    fd: Arc<OwnedFd>,
    rt: tokio::runtime::Handle,
    rtnl: rtnetlink::Handle,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    exited: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

struct Ready {
    fd: OwnedFd,
    rt: tokio::runtime::Handle,
    rtnl: rtnetlink::Handle,
}

/// A worker being started; `wait` yields it once its namespace and netlink connection exist.
pub(crate) struct Starting {
    label: String,
    ready: oneshot::Receiver<io::Result<Ready>>,
    shutdown: oneshot::Sender<()>,
    exited: mpsc::Receiver<()>,
    thread: JoinHandle<()>,
}

impl NsWorker {
    /// Spawns the thread; many can be started before any is awaited, so they run in parallel.
    pub(crate) fn start(label: &str) -> io::Result<Starting> {
        let (ready_tx, ready) = oneshot::channel();
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let (exited_tx, exited) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("netns-{label}"))
            .spawn(move || {
                worker_main(ready_tx, shutdown_rx);
                let _ = exited_tx.send(());
            })?;
        Ok(Starting {
            label: label.to_string(),
            ready,
            shutdown,
            exited,
            thread,
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.rt
    }

    pub(crate) fn rtnl(&self) -> &rtnetlink::Handle {
        &self.rtnl
    }

    /// Runs a sync closure on the namespace's worker thread; None if the worker is gone.
    pub(crate) async fn try_exec<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
        match self.rt.spawn(async move { f() }).await {
            Ok(r) => Some(r),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }

    /// A new OS thread that has entered this namespace before `f` runs.
    pub(crate) fn spawn_thread<F, R>(&self, name: &str, f: F) -> io::Result<JoinHandle<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let fd = Arc::clone(&self.fd);
        let (entered_tx, entered_rx) = mpsc::sync_channel::<io::Result<()>>(1);
        let handle = std::thread::Builder::new().name(name.to_string()).spawn(move || {
            let entered = setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from);
            drop(fd);
            let ok = entered.is_ok();
            let _ = entered_tx.send(entered);
            if !ok {
                // The caller gets the error and never sees this thread's result.
                std::panic::resume_unwind(Box::new("setns failed"));
            }
            f()
        })?;
        match entered_rx.recv() {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => Err(io::Error::other(format!(
                "thread for {} ended before entering it",
                self.label
            ))),
        }
    }

    /// Stops the runtime (dropping its tasks and sockets) and joins the thread, within a deadline.
    /// Returns false if the worker did not stop in time (it is then left detached).
    /// Asks the worker to stop without waiting (so many can wind down in parallel).
    pub(crate) fn signal_stop(&self) {
        if let Some(tx) = self.shutdown.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
    }

    pub(crate) fn stop(&mut self) -> bool {
        self.signal_stop();
        let Some(thread) = self.thread.take() else { return true };
        match self.exited.recv_timeout(STOP_DEADLINE) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                true
            }
            Err(mpsc::RecvTimeoutError::Timeout) => false,
        }
    }
}

impl Drop for NsWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Starting {
    pub(crate) async fn wait(self) -> io::Result<NsWorker> {
        let Starting {
            label,
            ready,
            shutdown,
            exited,
            thread,
        } = self;
        let result = ready.await;
        let ready = match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(io::Error::other("namespace worker thread died while starting"));
            }
        };
        Ok(NsWorker {
            label,
            fd: Arc::new(ready.fd),
            rt: ready.rt,
            rtnl: ready.rtnl,
            shutdown: Mutex::new(Some(shutdown)),
            exited,
            thread: Some(thread),
        })
    }
}

fn enter_new_namespace() -> io::Result<(OwnedFd, tokio::runtime::Runtime, rtnetlink::Handle)> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| io::Error::other(format!("unshare(CLONE_NEWNET): {e}")))?;
    // thread-self: /proc/self would name the main thread's namespace.
    let fd: OwnedFd = File::open("/proc/thread-self/ns/net")?.into();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let rtnl = {
        let _guard = rt.enter();
        let (conn, handle, _) = rtnetlink::new_connection()?;
        rt.spawn(conn);
        handle
    };
    Ok((fd, rt, rtnl))
}

fn worker_main(ready: oneshot::Sender<io::Result<Ready>>, shutdown: oneshot::Receiver<()>) {
    let (fd, rt, rtnl) = match enter_new_namespace() {
        Ok(parts) => parts,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready
        .send(Ok(Ready {
            fd,
            rt: rt.handle().clone(),
            rtnl,
        }))
        .is_err()
    {
        return;
    }
    // Until teardown, or until every sender is dropped.
    let _ = rt.block_on(shutdown);
    rt.shutdown_timeout(Duration::from_secs(1));
}
