//! Test-only: a throw-away network namespace with a current-thread runtime
//! living in it (what the lab hands out per namespace), plus the few
//! interface ioctls tests need. The namespace dies with its thread.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{FromRawFd, OwnedFd};
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

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::other(format!("interface name too long: {name}")));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

fn ioctl_socket() -> io::Result<OwnedFd> {
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl(fd: &OwnedFd, request: libc::Ioctl, req: &mut libc::ifreq) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if unsafe { libc::ioctl(fd.as_raw_fd(), request, req as *mut libc::ifreq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets IFF_UP on an interface of the calling thread's namespace.
pub(crate) fn set_up(name: &str) -> io::Result<()> {
    let sock = ioctl_socket()?;
    let mut req = ifreq(name)?;
    ioctl(&sock, libc::SIOCGIFFLAGS, &mut req)?;
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    ioctl(&sock, libc::SIOCSIFFLAGS, &mut req)
}

/// Gives an interface an IPv4 address (/32).
pub(crate) fn add_address(name: &str, ip: Ipv4Addr) -> io::Result<()> {
    let sock = ioctl_socket()?;
    let mut req = ifreq(name)?;
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in fits in the sockaddr slot of the union, as in C.
    unsafe {
        std::ptr::write(
            &mut req.ifr_ifru.ifru_addr as *mut libc::sockaddr as *mut libc::sockaddr_in,
            addr,
        )
    };
    ioctl(&sock, libc::SIOCSIFADDR, &mut req)
}

/// Creates a TUN device (IFF_TUN|IFF_NO_PI) in the calling thread's namespace.
pub(crate) fn create_tun(name: &str) -> io::Result<OwnedFd> {
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    ioctl(&fd, libc::TUNSETIFF, &mut req)?;
    Ok(fd)
}

/// Writes a sysctl of the calling thread's namespace.
pub(crate) fn sysctl(path: &str, value: &str) -> io::Result<()> {
    std::fs::write(format!("/proc/sys/{path}"), value)
}
