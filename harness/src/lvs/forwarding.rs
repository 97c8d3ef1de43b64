//! How packets reach a real server: the forwarding method of a destination
//! (`ipvsadm -g/-m/-i`, plus FULLNAT), and the mode of a whole set-up, which may
//! also have no director at all.

super::word::words!(
    /// Forwarding method of a destination (the kernel's `IP_VS_CONN_F_FWD_MASK`).
    Forward, "forwarding method", {
        /// Direct routing (`-g`): the frame is re-addressed to the real server's MAC.
        Dr = "dr",
        /// Masquerading (`-m`): the destination address is rewritten.
        Nat = "nat",
        /// IP-in-IP (`-i`).
        Tun = "tun",
        /// Both addresses rewritten (alibaba/LVS's idea; not mainline).
        FullNat = "fullnat",
    }
);

impl Forward {
    /// The Forward column of `ipvsadm -L`.
    pub fn name(self) -> &'static str {
        match self {
            Forward::Dr => "Route",
            Forward::Nat => "Masq",
            Forward::Tun => "Tunnel",
            Forward::FullNat => "FullNat",
        }
    }

    /// Reads the Forward column; forks print FULLNAT as `FullNat`, `FNAT` or `FullNAT`.
    /// `Local` is no method (the destination is the director itself): `None`.
    pub fn from_column(word: &str) -> Option<Forward> {
        match word {
            "Route" => Some(Forward::Dr),
            "Masq" => Some(Forward::Nat),
            "Tunnel" => Some(Forward::Tun),
            "FullNat" | "FNAT" | "FullNAT" => Some(Forward::FullNat),
            _ => None,
        }
    }

    /// The director sees the replies (NAT-style state tables).
    pub fn sees_replies(self) -> bool {
        matches!(self, Forward::Nat | Forward::FullNat)
    }
}

super::word::words!(
    /// How clients reach the real servers: through a director with one forwarding
    /// method, or directly.
    Mode, "mode", {
        /// No director: clients reach the real servers' own addresses round robin.
        Direct = "direct",
        Dr = "dr",
        Nat = "nat",
        Tun = "tun",
        FullNat = "fullnat",
    }
);

impl Mode {
    /// The director's forwarding method; `None` without a director.
    pub fn forward(self) -> Option<Forward> {
        match self {
            Mode::Direct => None,
            Mode::Dr => Some(Forward::Dr),
            Mode::Nat => Some(Forward::Nat),
            Mode::Tun => Some(Forward::Tun),
            Mode::FullNat => Some(Forward::FullNat),
        }
    }
}

impl From<Forward> for Mode {
    fn from(f: Forward) -> Mode {
        match f {
            Forward::Dr => Mode::Dr,
            Forward::Nat => Mode::Nat,
            Forward::Tun => Mode::Tun,
            Forward::FullNat => Mode::FullNat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_is_a_mode_of_the_same_spelling_and_lists_back() {
        for &f in Forward::ALL {
            assert_eq!(Mode::from(f).forward(), Some(f));
            assert_eq!(Mode::from(f).as_str(), f.as_str());
            assert_eq!(Forward::from_column(f.name()), Some(f));
        }
        assert_eq!(Mode::Direct.forward(), None);
        assert_eq!(Forward::from_column("Local"), None);
        assert_eq!(serde_json::to_string(&Mode::FullNat).unwrap(), "\"fullnat\"");
    }
}
