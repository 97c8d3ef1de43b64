//! Test-only: a throw-away network namespace with a current-thread runtime
//! living in it (what the lab hands out per namespace), plus the few
//! interface ioctls tests need. The namespace dies with its thread.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::thread::JoinHandle;

use nix::sched::{unshare, CloneFlags};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub(crate) struct TestNetns {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestNetns {
    /// A fresh namespace with `lo` up.
    pub(crate) fn new() -> io::Result<Self> {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let setup = (|| -> io::Result<tokio::runtime::Runtime> {
                unshare(CloneFlags::CLONE_NEWNET)?;
                set_up("lo")?;
                tokio::runtime::Builder::new_current_thread().enable_all().build()
            })();
            match setup {
                Ok(rt) => {
                    let _ = handle_tx.send(Ok(rt.handle().clone()));
                    // Dropped without waiting for the runtime's tasks.
                    let _ = rt.block_on(stop_rx);
                }
                Err(err) => {
                    let _ = handle_tx.send(Err(err));
                }
            }
        });
        let handle = handle_rx
            .recv()
            .map_err(|_| io::Error::other("namespace thread died"))??;
        Ok(Self {
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs blocking set-up code on the namespace thread.
    pub(crate) async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.handle
            .spawn(async move { f() })
            .await
            .expect("namespace task panicked")
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sets IFF_UP on an interface of the calling thread's namespace.
pub(crate) fn set_up(name: &str) -> io::Result<()> {
    crate::sys::netdev::set_up(name)
}

/// Gives an interface an IPv4 address (/32).
pub(crate) fn add_address(name: &str, ip: Ipv4Addr) -> io::Result<()> {
    crate::sys::netdev::set_ipv4_addr(name, ip)
}

/// Creates a TUN device (IFF_TUN|IFF_NO_PI) in the calling thread's namespace.
pub(crate) fn create_tun(name: &str) -> io::Result<OwnedFd> {
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    crate::sys::netdev::tun_set_iff(tun.as_fd(), name, libc::IFF_TUN | libc::IFF_NO_PI)?;
    Ok(tun.into())
}

/// Writes a sysctl of the calling thread's namespace.
pub(crate) fn sysctl(path: &str, value: &str) -> io::Result<()> {
    std::fs::write(format!("/proc/sys/{path}"), value)
}
