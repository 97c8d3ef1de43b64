//! The directors' VRRP in the human report: who is MASTER at the end, every transition with
//! the keepalived line that explains it, and what each failover cost.

use crate::run::VrrpOutcome;

pub fn render_vrrp(v: &VrrpOutcome) -> String {
    let masters = match v.masters.as_slice() {
        [] => "no director is MASTER".to_string(),
        [one] => format!("{one} is MASTER"),
        [a, b] => format!("{a} and {b} are both MASTER (split brain)"),
        many => format!("{} are all MASTER (split brain)", many.join(", ")),
    };
    let who = if v.nodes.iter().all(|(_, i)| *i == v.implementation) {
        v.implementation.word().to_string()
    } else {
        let each: Vec<String> = v.nodes.iter().map(|(d, i)| format!("{} on {d}", i.word())).collect();
        each.join(", ")
    };
    let mut out = format!("VRRP ({who}): {masters} at the end\n");
    if !v.elected_before_traffic {
        out.push_str("  no master was elected before the traffic started\n");
    }
    for t in &v.transitions {
        let why = t.cause.as_ref().map(|c| format!("  ← {c}")).unwrap_or_default();
        // `-0 ms` for a transition a hair before the traffic reads oddly.
        let at = if t.at_ms.round() == 0.0 { 0.0 } else { t.at_ms };
        out.push_str(&format!(
            "  {at:>9.0} ms  {:<8} {} → {} (priority {}){why}\n",
            t.director, t.from, t.to, t.priority
        ));
    }
    for f in &v.failovers {
        let answered = match f.failover_ms {
            Some(ms) => format!("first answer {ms:.0} ms after it"),
            None => "no answer after it".to_string(),
        };
        let kind = if f.outage { "failover" } else { "takeover" };
        out.push_str(&format!(
            "  {kind} after \"{}\": {} MASTER {:.0} ms later, {answered}; {} failed meanwhile\n",
            f.event, f.to, f.takeover_ms, f.failed_during
        ));
    }
    out
}
