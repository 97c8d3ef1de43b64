//! Field-level checks: turn spanned raw values into typed ones, reporting
//! every problem with its place in the file. Cross-field checks that need
//! the resolved addresses live next to the resolution in `resolve`.

use std::net::Ipv4Addr;
use std::ops::Range;

use hyper::http::uri::PathAndQuery;
use ipnet::Ipv4Net;

use super::diagnostic::Problems;
use super::keywords::Keyword;
use super::raw::S;
use super::suggest;
use crate::wire::Mac;

pub(crate) fn span<T>(v: &S<T>) -> Option<Range<usize>> {
    Some(v.span())
}

/// A word from a closed list, or `default` when absent. Unknown words are
/// reported with the valid list and the nearest one.
pub(crate) fn keyword<K: Keyword>(p: &mut Problems<'_>, value: Option<&S<String>>, default: K) -> K {
    let Some(v) = value else { return default };
    match K::from_word(v.get_ref()) {
        Some(k) => k,
        None => {
            let words = K::words();
            let near = suggest::did_you_mean(v.get_ref(), words.iter().copied());
            p.push(
                span(v),
                format!("unknown {} `{}`; valid: {}", K::WHAT, v.get_ref(), words.join(" ")),
                near,
            );
            default
        }
    }
}

/// An integer in `min..=max`, or `default` when absent or out of range.
pub(crate) fn int_in<T>(p: &mut Problems<'_>, value: Option<&S<i64>>, what: &str, min: i64, max: i64, default: T) -> T
where
    T: TryFrom<i64>,
{
    let Some(v) = value else { return default };
    let n = *v.get_ref();
    if n < min || n > max {
        p.error(span(v), format!("`{what}` = {n} is out of range {min}..={max}"));
        return default;
    }
    T::try_from(n).unwrap_or(default)
}

/// Smallest IPv4 MTU (RFC 791) and the largest a veth takes.
pub(crate) const MTU_RANGE: (i64, i64) = (68, 65_535);

/// An `mtu` key: `None` when absent or out of range (reported).
pub(crate) fn mtu(p: &mut Problems<'_>, value: Option<&S<i64>>) -> Option<u32> {
    let v = value?;
    let m: u32 = int_in(p, Some(v), "mtu", MTU_RANGE.0, MTU_RANGE.1, 0);
    (m > 0).then_some(m)
}

pub(crate) fn ipv4(p: &mut Problems<'_>, v: &S<String>, what: &str) -> Option<Ipv4Addr> {
    match v.get_ref().parse::<Ipv4Addr>() {
        Ok(a) => Some(a),
        Err(_) => {
            let hint = v
                .get_ref()
                .contains('/')
                .then(|| "give the address without a prefix; the prefix comes from its network".to_string());
            p.push(
                span(v),
                format!("`{what}` = \"{}\" is not an IPv4 address", v.get_ref()),
                hint,
            );
            None
        }
    }
}

/// A subnet in CIDR form whose host bits are zero.
pub(crate) fn subnet(p: &mut Problems<'_>, v: &S<String>) -> Option<Ipv4Net> {
    match v.get_ref().parse::<Ipv4Net>() {
        Ok(net) if net.trunc() == net => Some(net),
        Ok(net) => {
            p.push(
                span(v),
                format!("subnet \"{}\" has host bits set", v.get_ref()),
                Some(format!("did you mean \"{}\"?", net.trunc())),
            );
            Some(net.trunc())
        }
        Err(_) => {
            p.push(
                span(v),
                format!("`subnet` = \"{}\" is not an IPv4 network in CIDR form", v.get_ref()),
                Some("e.g. \"192.0.2.0/24\"".into()),
            );
            None
        }
    }
}

/// A MAC address `aa:bb:cc:dd:ee:ff`, unicast.
pub(crate) fn mac(p: &mut Problems<'_>, v: &S<String>) -> Option<Mac> {
    // Stricter than `Mac::from_str`: exactly two hex digits per byte, colon-separated.
    let text = v.get_ref();
    let mac = text
        .parse::<Mac>()
        .ok()
        .filter(|_| text.split(':').all(|b| b.len() == 2));
    match mac {
        Some(m) if !m.is_multicast() => Some(m),
        Some(_) => {
            p.push(
                span(v),
                format!("MAC \"{}\" is a multicast address", v.get_ref()),
                Some("the first byte must be even, e.g. 02:...".into()),
            );
            None
        }
        None => {
            p.push(
                span(v),
                format!("\"{}\" is not a MAC address", v.get_ref()),
                Some("write six hex bytes: \"02:00:00:00:00:01\"".into()),
            );
            None
        }
    }
}

/// A netmask like `255.255.255.0` → prefix length; must be contiguous and
/// no wider than /8 (ipvsadm -M).
pub(crate) fn persistence_netmask(p: &mut Problems<'_>, v: &S<String>) -> Option<u8> {
    let text = v.get_ref();
    let Ok(mask) = text.parse::<Ipv4Addr>() else {
        p.push(
            span(v),
            format!("`persistence_netmask` = \"{text}\" is not a netmask"),
            Some("e.g. \"255.255.255.0\"".into()),
        );
        return None;
    };
    let bits = u32::from(mask);
    let prefix = bits.leading_ones();
    if bits.checked_shl(prefix).unwrap_or(0) != 0 {
        p.push(
            span(v),
            format!("`persistence_netmask` = \"{text}\" is not a contiguous netmask"),
            Some(format!(
                "did you mean \"{}\"?",
                Ipv4Net::new(Ipv4Addr::UNSPECIFIED, prefix as u8)
                    .map(|n| n.netmask())
                    .unwrap_or(mask)
            )),
        );
        return None;
    }
    if prefix < 8 {
        p.push(
            span(v),
            format!("`persistence_netmask` = \"{text}\" (/{prefix}) is wider than /8"),
            Some("IPVS persistence granularity is /8 at the widest; use 255.0.0.0 or narrower".into()),
        );
        return None;
    }
    Some(prefix as u8)
}

/// Host names become namespace names and appear in reports.
pub(crate) fn host_name(p: &mut Problems<'_>, v: &S<String>) -> bool {
    let name = v.get_ref();
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !ok {
        p.push(
            span(v),
            format!("host name \"{name}\" is not usable"),
            Some("use 1 to 32 letters, digits, '-' or '_', starting with a letter".into()),
        );
    } else if name == RESERVED_HOST {
        p.push(
            span(v),
            format!("host name \"{name}\" is reserved"),
            Some("the lab keeps its bridges in a namespace of that name; choose another".into()),
        );
        return false;
    }
    ok
}

/// The lab's own namespace, holding one bridge per network.
const RESERVED_HOST: &str = "switch";

/// Names that become lab and bridge names (the scenario's, the networks'): what the lab takes.
pub(crate) fn lab_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

pub(crate) const LAB_LABEL_HINT: &str = "use 1 to 64 letters, digits, '.', '-' or '_', not starting with '.' or '-'";

/// Sysctl names: dotted, lowercase-ish words (no slashes, no `..`).
pub(crate) fn sysctl_name(p: &mut Problems<'_>, name: &str, at: Option<Range<usize>>) -> bool {
    let ok = name.split('.').count() >= 2
        && name
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    if !ok {
        p.push(
            at,
            format!("\"{name}\" is not a sysctl name"),
            Some("write it with dots, as `sysctl` does: \"net.ipv4.conf.all.arp_ignore\"".into()),
        );
    }
    ok
}

/// The HTTP request path, parsed as the client will parse it (`/`, `/a?b=1`).
pub(crate) fn request_path(p: &mut Problems<'_>, v: &S<String>) -> Option<PathAndQuery> {
    let text = v.get_ref();
    if !text.starts_with('/') {
        p.push(span(v), format!("`path` = \"{text}\" must start with '/'"), None);
        return None;
    }
    match text
        .parse::<hyper::Uri>()
        .ok()
        .and_then(|u| u.path_and_query().cloned())
    {
        Some(path) => Some(path),
        None => {
            p.push(
                span(v),
                format!("`path` = {text:?} is not an HTTP request path"),
                Some("write spaces and other special characters percent-encoded (%20)".into()),
            );
            None
        }
    }
}
