//! The L4 protocol of a virtual service (`ipvsadm -t` / `-u`). SCTP is not modelled.

super::word::words!(
    /// TCP or UDP: the service, its connections, the real servers' listeners and the
    /// client traffic all speak one.
    Proto, "protocol", { Tcp = "tcp", Udp = "udp" }
);

impl Proto {
    /// As ipvsadm prints it: `TCP`, `UDP`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        }
    }

    /// ipvsadm's service switch (`option_from_protocol`): `-t`, `-u`.
    pub fn switch(self) -> &'static str {
        match self {
            Proto::Tcp => "-t",
            Proto::Udp => "-u",
        }
    }

    /// The IP protocol number (`IPPROTO_TCP`, `IPPROTO_UDP`).
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }

    /// The protocol of an IP protocol number, if lvslab models it.
    pub fn from_number(number: u8) -> Option<Proto> {
        Proto::ALL.iter().copied().find(|p| p.number() == number)
    }

    /// Reads ipvsadm's `TCP` / `UDP` in any case.
    pub fn from_name(name: &str) -> Option<Proto> {
        Proto::ALL.iter().copied().find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_read_back() {
        for &p in Proto::ALL {
            assert_eq!(p.as_str().parse::<Proto>(), Ok(p));
            assert_eq!(Proto::from_name(&p.name().to_ascii_lowercase()), Some(p));
            assert_eq!(Proto::from_number(p.number()), Some(p));
            assert_eq!(p.switch(), format!("-{}", &p.as_str()[..1]));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        let err = "sctp".parse::<Proto>().unwrap_err();
        assert_eq!(err.to_string(), "unknown protocol `sctp` (known: tcp, udp)");
        assert_eq!(Proto::from_name("SCTP"), None);
        assert_eq!(Proto::from_number(132), None);
    }
}
