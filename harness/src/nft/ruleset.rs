//! A namespace's rules that drop or reject, read back from nft: the JSON listing for the
//! chains' hooks, the matches and the counters, the text listing (`-a`, with handles) for each
//! rule as the user would read it.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::process::Command;

use ipnet::Ipv4Net;
use serde_json::Value;

use crate::diagnose::evidence::{FirewallRule, MatchValue, RuleMatch};

/// The rules with a `drop` or `reject` verdict in the calling thread's namespace.
pub fn read_drops() -> Result<Vec<FirewallRule>, String> {
    let list = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("nft")
            .args(args)
            .output()
            .map_err(|e| super::nft_missing(&e))?;
        if !out.status.success() {
            return Err(format!(
                "nft {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        String::from_utf8(out.stdout).map_err(|e| format!("nft {}: {e}", args.join(" ")))
    };
    let json = list(&["-j", "list", "ruleset"])?;
    let text = list(&["-a", "list", "ruleset"])?;
    drops(&json, &text)
}

/// The drop and reject rules of `json` (`nft -j list ruleset`), each with its line of `text`
/// (`nft -a list ruleset`).
pub fn drops(json: &str, text: &str) -> Result<Vec<FirewallRule>, String> {
    let doc: Value = serde_json::from_str(json).map_err(|e| format!("nft -j list ruleset: {e}"))?;
    let items = doc["nftables"].as_array().cloned().unwrap_or_default();
    let texts = rule_texts(text);
    let mut hooks: HashMap<(String, String), Option<String>> = HashMap::new();
    for chain in items.iter().filter_map(|i| i.get("chain")) {
        hooks.insert(
            (table_of(chain), str_of(chain, "name")),
            chain.get("hook").and_then(Value::as_str).map(str::to_owned),
        );
    }
    let mut rules = Vec::new();
    for rule in items.iter().filter_map(|i| i.get("rule")) {
        let table = table_of(rule);
        let chain = str_of(rule, "chain");
        let Some(verdict) = rule["expr"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|e| ["drop", "reject"].into_iter().find(|v| e.get(*v).is_some()))
        else {
            continue;
        };
        let exprs = rule["expr"].as_array().cloned().unwrap_or_default();
        let packets = exprs
            .iter()
            .find_map(|e| e.get("counter").and_then(|c| c.get("packets")).and_then(Value::as_u64));
        let handle = rule.get("handle").and_then(Value::as_u64).unwrap_or(0);
        let text = texts
            .get(&(table.clone(), chain.clone(), handle))
            .cloned()
            .unwrap_or_else(|| verdict.to_string());
        rules.push(FirewallRule {
            hook: hooks.get(&(table.clone(), chain.clone())).cloned().flatten(),
            table,
            chain,
            text,
            verdict: verdict.to_string(),
            packets,
            matches: exprs.iter().filter_map(|e| rule_match(e.get("match")?)).collect(),
        });
    }
    Ok(rules)
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// `inet filter`.
fn table_of(v: &Value) -> String {
    format!("{} {}", str_of(v, "family"), str_of(v, "table"))
}

/// One match on an address or a port; `None` for what the rules do not judge.
fn rule_match(m: &Value) -> Option<RuleMatch> {
    let equal = match m.get("op")?.as_str()? {
        "==" | "in" => true,
        "!=" => false,
        _ => return None,
    };
    let left = m.get("left")?;
    let field = if let Some(p) = left.get("payload") {
        format!("{} {}", p.get("protocol")?.as_str()?, p.get("field")?.as_str()?)
    } else if let Some(f) = left.get("fib") {
        let flags: Vec<&str> = f.get("flags")?.as_array()?.iter().filter_map(Value::as_str).collect();
        format!("fib {} {}", flags.join(" . "), f.get("result")?.as_str()?)
    } else {
        return None;
    };
    let right = m.get("right")?;
    let values = match right.get("set").and_then(Value::as_array) {
        Some(set) => set.iter().map(value).collect(),
        None => vec![value(right)],
    };
    Some(RuleMatch { field, equal, values })
}

fn value(v: &Value) -> MatchValue {
    let word = || MatchValue::Word(v.to_string());
    match v {
        Value::String(s) => s
            .parse::<Ipv4Addr>()
            .map_or_else(|_| MatchValue::Word(s.clone()), |a| MatchValue::Net(Ipv4Net::from(a))),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .map_or_else(word, |p| MatchValue::Ports(p, p)),
        // A fib check's `missing`.
        Value::Bool(false) => MatchValue::Word("missing".into()),
        Value::Object(o) => {
            if let Some(p) = o.get("prefix") {
                let net = p["addr"]
                    .as_str()
                    .and_then(|a| a.parse::<Ipv4Addr>().ok())
                    .zip(p["len"].as_u64().and_then(|l| u8::try_from(l).ok()))
                    .and_then(|(a, l)| Ipv4Net::new(a, l).ok());
                return net.map_or_else(word, MatchValue::Net);
            }
            if let Some([lo, hi]) = o.get("range").and_then(Value::as_array).map(Vec::as_slice) {
                if let (MatchValue::Net(lo), MatchValue::Net(hi)) = (value(lo), value(hi)) {
                    return MatchValue::AddrRange(lo.addr(), hi.addr());
                }
                if let (MatchValue::Ports(lo, _), MatchValue::Ports(hi, _)) = (value(lo), value(hi)) {
                    return MatchValue::Ports(lo, hi);
                }
            }
            word()
        }
        _ => word(),
    }
}

/// Each rule's text by (table, chain, handle), counter values left out.
fn rule_texts(listing: &str) -> HashMap<(String, String, u64), String> {
    let mut out = HashMap::new();
    let (mut table, mut chain) = (String::new(), String::new());
    for line in listing.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["table", family, name, ..] => table = format!("{family} {name}"),
            ["chain", name, ..] => chain = name.to_string(),
            _ => {
                let Some((rule, handle)) = line.rsplit_once(" # handle ") else {
                    continue;
                };
                let Ok(handle) = handle.trim().parse() else { continue };
                if matches!(words.first(), Some(&("set" | "map" | "flowtable" | "type"))) {
                    continue;
                }
                out.insert((table.clone(), chain.clone(), handle), without_counts(rule));
            }
        }
    }
    out
}

/// `counter packets 3 bytes 180 drop` → `counter drop`.
fn without_counts(rule: &str) -> String {
    let words: Vec<&str> = rule.split_whitespace().collect();
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        if matches!(words[i], "packets" | "bytes")
            && i > 0
            && words.get(i + 1).is_some_and(|n| n.parse::<u64>().is_ok())
        {
            i += 2;
            continue;
        }
        out.push(words[i]);
        i += 1;
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvs::Proto;

    /// `nft -j list ruleset` and `nft -a list ruleset` of nftables 1.0.6 for one table.
    const JSON: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "f", "handle": 1}}, {"chain": {"family": "inet", "table": "f", "name": "in", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"chain": {"family": "inet", "table": "f", "name": "routed", "handle": 2, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "f", "chain": "in", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "192.0.2.100"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}, {"counter": {"packets": 7, "bytes": 420}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "f", "chain": "in", "handle": 5, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"set": [{"prefix": {"addr": "10.0.0.0", "len": 8}}, "192.0.2.5"]}}}, {"counter": {"packets": 0, "bytes": 0}}, {"reject": {"type": "icmp", "expr": "port-unreachable"}}]}}, {"rule": {"family": "inet", "table": "f", "chain": "in", "handle": 7, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [80, 443]}}}, {"counter": {"packets": 0, "bytes": 0}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "f", "chain": "in", "handle": 8, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"range": ["10.1.0.0", "10.1.0.9"]}}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "f", "chain": "routed", "handle": 9, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "192.0.2.100"}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "f", "chain": "routed", "handle": 10, "expr": [{"match": {"op": "==", "left": {"fib": {"result": "oif", "flags": ["saddr", "iif"]}}, "right": false}}, {"counter": {"packets": 2, "bytes": 120}}, {"drop": null}]}}]}"#;

    const TEXT: &str = "table inet f { # handle 1
	chain in { # handle 1
		type filter hook input priority filter; policy accept;
		ip daddr 192.0.2.100 tcp dport 80 counter packets 7 bytes 420 drop # handle 3
		ip saddr { 10.0.0.0/8, 192.0.2.5 } counter packets 0 bytes 0 reject with icmp port-unreachable # handle 5
		tcp dport { 80, 443 } counter packets 0 bytes 0 accept # handle 7
		ip daddr 10.1.0.0-10.1.0.9 drop # handle 8
	}

	chain routed { # handle 2
		type filter hook forward priority filter; policy accept;
		ip saddr 192.0.2.100 counter packets 0 bytes 0 drop # handle 9
		fib saddr . iif oif missing counter packets 2 bytes 120 drop # handle 10
	}
}
";

    #[test]
    fn drop_and_reject_rules_come_with_hook_text_counter_and_matches() {
        let rules = drops(JSON, TEXT).unwrap();
        let texts: Vec<&str> = rules.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "ip daddr 192.0.2.100 tcp dport 80 counter drop",
                "ip saddr { 10.0.0.0/8, 192.0.2.5 } counter reject with icmp port-unreachable",
                "ip daddr 10.1.0.0-10.1.0.9 drop",
                "ip saddr 192.0.2.100 counter drop",
                "fib saddr . iif oif missing counter drop",
            ]
        );
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        let first = &rules[0];
        assert_eq!((first.table.as_str(), first.chain.as_str()), ("inet f", "in"));
        assert_eq!(first.hook.as_deref(), Some("input"));
        assert_eq!(first.packets, Some(7));
        assert!(first.admits("ip daddr", vip));
        assert!(!first.admits("ip daddr", Ipv4Addr::new(192, 0, 2, 11)));
        assert!(first.admits_dport(Proto::Tcp, 80) && !first.admits_dport(Proto::Tcp, 22));
        assert!(!first.admits_dport(Proto::Udp, 80));
        assert_eq!(rules[1].verdict, "reject");
        assert!(rules[1].admits("ip saddr", Ipv4Addr::new(10, 9, 9, 9)));
        assert!(!rules[1].admits("ip saddr", vip));
        assert_eq!(rules[2].packets, None);
        assert!(rules[2].admits("ip daddr", Ipv4Addr::new(10, 1, 0, 9)));
        assert_eq!(rules[3].hook.as_deref(), Some("forward"));
        assert!(rules[4].is_reverse_path_check() && !rules[3].is_reverse_path_check());
    }

    #[test]
    fn a_ruleset_reads_back_from_a_namespace() {
        // Needs nft and root (a namespace of its own, so nothing outside is touched).
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for a network namespace");
            return;
        }
        let out = Command::new("unshare")
            .args(["-n", "sh", "-c"])
            .arg("printf 'table ip t { chain c { type filter hook output priority 0; ip daddr 192.0.2.1 counter drop; }; }' | nft -f - && nft -j list ruleset && echo ==== && nft -a list ruleset")
            .output()
            .unwrap();
        let all = String::from_utf8_lossy(&out.stdout);
        let (json, text) = all.split_once("====").expect("both listings");
        let rules = drops(json, text).unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].text, "ip daddr 192.0.2.1 counter drop");
        assert_eq!(rules[0].hook.as_deref(), Some("output"));
        assert_eq!(rules[0].packets, Some(0));
    }
}
