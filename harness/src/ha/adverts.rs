//! Blocking a director's VRRP adverts, as a firewall dropping IP protocol 112 does (the most
//! reported cause of split brain): nftables rules in the director's namespace, on input and
//! output, so that its adverts neither leave nor arrive. keepalived then logs
//! "send advert error 1 (Operation not permitted)".

use crate::lab::Host;

/// The lab's own table, apart from any a scenario or keepalived installs.
const TABLE: &str = "lvslab_vrrp_block";

/// Drops (or lets through again) every VRRP packet in and out of `host`.
pub async fn block(host: &Host, blocked: bool) -> Result<(), String> {
    let script = if blocked {
        format!(
            "table ip {TABLE} {{\n\
             \x20 chain input {{ type filter hook input priority filter - 10; policy accept; ip protocol 112 drop; }}\n\
             \x20 chain output {{ type filter hook output priority filter - 10; policy accept; ip protocol 112 drop; }}\n\
             }}\n"
        )
    } else {
        format!("delete table ip {TABLE}\n")
    };
    host.exec(move || nft(&script)).await.map_err(|e| e.to_string())?
}

/// `nft -f -` with `script` on stdin, in the calling thread's namespace.
pub fn nft(script: &str) -> Result<(), String> {
    crate::nft::load(script)
}
