//! Does a generic netlink family exist in this thread's network namespace?
//! One CTRL_CMD_GETFAMILY request on a short-lived NETLINK_GENERIC socket.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use crate::sys::socket;

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
    let fd = socket::socket(
        libc::AF_NETLINK,
        libc::SOCK_RAW | libc::SOCK_CLOEXEC,
        libc::NETLINK_GENERIC,
    )?;
    // Bounded wait: the kernel answers at once, but never hang on it.
    socket::set_recv_timeout(fd.as_fd(), Duration::from_secs(1))?;
    let request = getfamily_request(name);
    socket::send(fd.as_fd(), &request)?;
    let mut buf = [0u8; 8192];
    let n = socket::recv(fd.as_fd(), &mut buf)?;
    parse_reply(&buf[..n])
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
