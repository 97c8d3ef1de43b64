//! Does a generic netlink family exist in this thread's network namespace?
//! One CTRL_CMD_GETFAMILY request on a short-lived NETLINK_GENERIC socket.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NLMSG_ERROR: u16 = 2;

/// Ok(true) if the family resolves, Ok(false) if the kernel says it does not.
pub fn family_exists(name: &str) -> io::Result<bool> {
    // GENL_NAMSIZ: longer names are rejected by the kernel with EINVAL.
    if name.len() >= 16 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "generic netlink family names are at most 15 bytes",
        ));
    }
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_GENERIC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Bounded wait: the kernel answers at once, but never hang on it.
    let tv = libc::timeval { tv_sec: 1, tv_usec: 0 };
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let request = getfamily_request(name);
    let sent = unsafe { libc::send(fd.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 8192];
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    parse_reply(&buf[..n as usize])
}

fn getfamily_request(name: &str) -> Vec<u8> {
    let mut attr_data = name.as_bytes().to_vec();
    attr_data.push(0);
    let attr_len = 4 + attr_data.len();
    let padded = (attr_len + 3) & !3;
    let total = 16 + 4 + padded;
    let mut msg = Vec::with_capacity(total);
    msg.extend_from_slice(&(total as u32).to_ne_bytes());
    msg.extend_from_slice(&GENL_ID_CTRL.to_ne_bytes());
    msg.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // pid: kernel assigns
    msg.extend_from_slice(&[CTRL_CMD_GETFAMILY, 1, 0, 0]);
    msg.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    msg.extend_from_slice(&CTRL_ATTR_FAMILY_NAME.to_ne_bytes());
    msg.extend_from_slice(&attr_data);
    msg.resize(total, 0);
    msg
}

fn parse_reply(reply: &[u8]) -> io::Result<bool> {
    if reply.len() < 16 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "short netlink reply"));
    }
    let msg_type = u16::from_ne_bytes([reply[4], reply[5]]);
    if msg_type == NLMSG_ERROR {
        if reply.len() < 20 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "short netlink error"));
        }
        let errno = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
        return match -errno {
            0 => Ok(true),
            libc::ENOENT => Ok(false),
            e => Err(io::Error::from_raw_os_error(e)),
        };
    }
    Ok(msg_type == GENL_ID_CTRL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nlctrl_resolves_and_unknown_family_does_not() {
        // "nlctrl" is the controller itself: always present.
        assert!(family_exists("nlctrl").unwrap());
        assert!(!family_exists("lvslab-nofam").unwrap());
    }
}
