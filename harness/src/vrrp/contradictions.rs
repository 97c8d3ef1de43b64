//! Contradictions in a set of `vrrp_instance`s meant to back each other up: set-ups keepalived
//! accepts (at most with a fix-up warning) that do not do what they seem to say. Each is a
//! warning, never a refusal: a scenario may want to reproduce the mistake.
//!
//! Pure over what both the scenario and the importer know of each node. The rules are
//! keepalived 2.2.7's: vrrp/vrrp.c `vrrp_complete_instance` (fix-ups, address owner),
//! `vrrp_check_packet` (adverts a node drops), `vrrp_state_master_rx` (equal priority: the
//! higher primary address wins), vrrp/vrrp_track.c `vrrp_set_effective_priority` (1..254).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::packet::Auth;
use super::timers::{normalise_advert_int, Version};
use super::track::clamp_priority;

const PRIO_OWNER: u8 = 255;
/// The weights keepalived accepts (`vrrp_track.c`: -253..253).
const MAX_WEIGHT: i64 = 253;

/// One node's instance, with keepalived's defaults applied (priority 100 or 255, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// How the caller names the node: a director, a file.
    pub name: String,
    /// The `vrrp_instance` name, for keepalived's own lines.
    pub instance: String,
    /// The primary address of its interface (advert source, tie-breaker); `None` when unknown.
    pub address: Option<Ipv4Addr>,
    /// The segment its adverts go to (a network, an interface name): only members on the same
    /// link hear each other.
    pub link: String,
    pub vrid: u8,
    pub priority: u8,
    /// `state MASTER` (the initial wish).
    pub master: bool,
    pub nopreempt: bool,
    pub preempt_delay: Duration,
    pub strict: bool,
    pub version: Version,
    pub advert_int: Duration,
    pub auth: Auth,
    pub vips: Vec<Ipv4Addr>,
    pub tracks: Vec<Tracked>,
}

/// A `track_interface` or `track_script` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracked {
    pub kind: TrackKind,
    pub name: String,
    pub weight: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackKind {
    Interface,
    Script,
}

impl TrackKind {
    fn keyword(self) -> &'static str {
        match self {
            TrackKind::Interface => "track_interface",
            TrackKind::Script => "track_script",
        }
    }
}

/// What a contradiction is about, so that the caller can point at its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Priority,
    State,
    Nopreempt,
    PreemptDelay,
    /// An index into [`Member::tracks`].
    Track(usize),
    Vrid,
    Vips,
    AdvertInt,
    Auth,
    Version,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contradiction {
    /// An index into the members given.
    pub member: usize,
    pub subject: Subject,
    pub message: String,
    pub hint: String,
}

/// Which contradictions to look for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checks {
    /// keepalived's own fix-ups of one node (nopreempt with state MASTER, preempt_delay with
    /// nopreempt, ...): the importer already reports them in keepalived's words.
    pub fix_ups: bool,
}

/// Every contradiction among `members`, in member order.
pub fn find(members: &[Member], checks: Checks) -> Vec<Contradiction> {
    let mut out = Vec::new();
    for (i, m) in members.iter().enumerate() {
        if checks.fix_ups {
            fix_ups(i, m, &mut out);
        }
        owner(i, m, &mut out);
    }
    for group in routers(members) {
        mismatches(members, &group, &mut out);
        ties(members, &group, &mut out);
        idle_weights(members, &group, &mut out);
    }
    other_vrids(members, &mut out);
    out.sort_by_key(|c| c.member);
    out
}

/// The members of one virtual router: same VRID on the same link, in member order.
fn routers(members: &[Member]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        match groups.iter_mut().find(|g| {
            let first = &members[g[0]];
            first.vrid == m.vrid && first.link == m.link
        }) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// The priority a member runs at while everything it tracks is fine: positive weights added
/// (negative ones take off only on failure), clamped to 1..254; an owner ignores weights.
fn healthy(m: &Member) -> u8 {
    if m.priority == PRIO_OWNER {
        return PRIO_OWNER;
    }
    let bonus: i64 = m.tracks.iter().map(|t| i64::from(t.weight.max(0))).sum();
    clamp_priority(i64::from(m.priority) + bonus)
}

fn fix_ups(i: usize, m: &Member, out: &mut Vec<Contradiction>) {
    let name = &m.instance;
    let mut push = |subject, message: String, hint: &str| {
        out.push(Contradiction {
            member: i,
            subject,
            message,
            hint: hint.to_string(),
        })
    };
    // vrrp_complete_instance's order: owner, initial state MASTER, then nopreempt.
    let mut nopreempt = m.nopreempt;
    let mut delay = !m.preempt_delay.is_zero();
    if m.priority == PRIO_OWNER && nopreempt {
        push(
            Subject::Nopreempt,
            format!(
                "`nopreempt` on {} does nothing: keepalived says \"({name}) nopreempt is incompatible with priority 255. resetting nopreempt\"",
                m.name
            ),
            "an address owner always takes the VIP back; give it a priority of at most 254 for nopreempt to work",
        );
        nopreempt = false;
    }
    if m.master {
        if nopreempt {
            push(
                Subject::Nopreempt,
                format!(
                    "`nopreempt` on {} does nothing: keepalived says \"({name}) Warning - nopreempt will not work with initial state MASTER - clearing\", so it takes the VIP back when it returns",
                    m.name
                ),
                "nopreempt needs state = \"BACKUP\" on every node (the higher priority still wins the first election)",
            );
            nopreempt = false;
        }
        if delay {
            push(
                Subject::PreemptDelay,
                format!(
                    "`preempt_delay` on {} does nothing: keepalived says \"({name}) Warning - preempt delay will not work with initial state MASTER - clearing\"",
                    m.name
                ),
                "preempt_delay needs state = \"BACKUP\"",
            );
            delay = false;
        }
    }
    if delay && m.strict {
        push(
            Subject::PreemptDelay,
            format!(
                "`preempt_delay` on {} does nothing: keepalived says \"({name}) preempt_delay is incompatible with strict mode - resetting\"",
                m.name
            ),
            "drop vrrp_strict, or the preempt_delay",
        );
        delay = false;
    }
    if delay && nopreempt {
        push(
            Subject::PreemptDelay,
            format!(
                "`preempt_delay` on {} does nothing: keepalived says \"({name}) preempt_delay is incompatible with nopreempt mode - resetting\"",
                m.name
            ),
            "a node that never preempts has nothing to delay: keep one of the two",
        );
    }
}

/// Priority 255 claims the VIP as the node's own interface address. keepalived does not check
/// that it is: it starts MASTER at once, drops weighted tracks, and two owners fight. A lab
/// director never owns the VIP (VRRP adds it), so in a scenario this is always a contradiction.
fn owner(i: usize, m: &Member, out: &mut Vec<Contradiction>) {
    if m.priority != PRIO_OWNER {
        return;
    }
    let mut message = format!(
        "priority 255 declares {} the address owner, whose own interface address is the VIP; keepalived does not \
         check that: {} goes MASTER at start without waiting for a master's advert",
        m.name, m.name
    );
    let weighted: Vec<&Tracked> = m.tracks.iter().filter(|t| t.weight != 0).collect();
    if !weighted.is_empty() {
        let names: Vec<String> = weighted
            .iter()
            .map(|t| format!("{} {} (weight {})", t.kind.keyword(), t.name, t.weight))
            .collect();
        let _ = write!(
            message,
            ", and keepalived drops its weighted tracks for an owner ({})",
            names.join(", ")
        );
    }
    out.push(Contradiction {
        member: i,
        subject: Subject::Priority,
        message,
        hint: "keep 255 for a node whose interface address is the VIP (a lab director never is one); a node sharing \
               the VIP with its peers takes 254 at most"
            .to_string(),
    });
}

/// Settings that make one member drop the others' adverts (`vrrp_check_packet`).
fn mismatches(members: &[Member], group: &[usize], out: &mut Vec<Contradiction>) {
    let first = &members[group[0]];
    for &i in &group[1..] {
        let m = &members[i];
        let split = format!(
            "so {} and {} never hear each other: split brain, both MASTER",
            first.name, m.name
        );
        let mut push = |subject, message: String, hint: String| {
            out.push(Contradiction {
                member: i,
                subject,
                message,
                hint,
            })
        };
        if m.version != first.version {
            push(
                Subject::Version,
                format!(
                    "{} runs VRRPv{} and {} VRRPv{} on VRID {}: keepalived drops an advert of the other version \
                     (\"({}) wrong version. Received {} and expect {}\"), {split}",
                    m.name,
                    m.version.number(),
                    first.name,
                    first.version.number(),
                    m.vrid,
                    m.instance,
                    first.version.number(),
                    m.version.number()
                ),
                "give every node of the instance the same `version`".to_string(),
            );
            continue;
        }
        let (mine, _) = normalise_advert_int(&m.instance, m.version, m.advert_int);
        let (theirs, _) = normalise_advert_int(&first.instance, first.version, first.advert_int);
        if mine != theirs {
            match m.version {
                Version::V2 => push(
                    Subject::AdvertInt,
                    format!(
                        "{} advertises every {} s and {} every {} s on VRID {}: a VRRPv2 node drops an advert with \
                         another interval (\"({}) advertisement interval mismatch mine={} sec rcv'd={} sec\"), {split}",
                        m.name,
                        mine.as_secs_f64(),
                        first.name,
                        theirs.as_secs_f64(),
                        m.vrid,
                        m.instance,
                        mine.as_secs(),
                        theirs.as_secs()
                    ),
                    "give every node of the instance the same `advert_int`".to_string(),
                ),
                Version::V3 => push(
                    Subject::AdvertInt,
                    format!(
                        "{} advertises every {} s and {} every {} s on VRID {}: VRRPv3 accepts the master's interval \
                         (no split brain), but a backup's down timer then follows whoever is master, so failover \
                         times differ by direction",
                        m.name,
                        mine.as_secs_f64(),
                        first.name,
                        theirs.as_secs_f64(),
                        m.vrid
                    ),
                    "give every node of the instance the same `advert_int`".to_string(),
                ),
            }
        }
        // VRRPv3 carries no authentication (keepalived ignores it with a warning).
        if m.version == Version::V2 && m.auth != first.auth {
            let line = match (&m.auth, &first.auth) {
                (Auth::Pass(_), Auth::Pass(_)) => format!("\"({}) received an invalid passwd!\"", m.instance),
                (mine, theirs) => format!(
                    "\"({}) received a {} auth, expecting {}!\"",
                    m.instance,
                    auth_code(theirs),
                    auth_code(mine)
                ),
            };
            push(
                Subject::Auth,
                format!(
                    "{} and {} authenticate differently on VRID {} ({} / {}): keepalived drops the other's adverts \
                     ({line}), {split}",
                    m.name,
                    first.name,
                    m.vrid,
                    auth_word(&m.auth),
                    auth_word(&first.auth)
                ),
                "give every node of the instance the same auth_type and auth_pass".to_string(),
            );
        }
        let mut mine = m.vips.clone();
        let mut theirs = first.vips.clone();
        mine.sort();
        theirs.sort();
        if mine != theirs {
            let list = |v: &[Ipv4Addr]| v.iter().map(Ipv4Addr::to_string).collect::<Vec<_>>().join(", ");
            // What m logs of the first's advert: the count is checked before the addresses.
            let logged = match mine.iter().find(|a| !theirs.contains(a)) {
                Some(missing) if mine.len() == theirs.len() => format!(
                    "ip address associated with VRID {} not present in MASTER advert: {missing}",
                    m.vrid
                ),
                _ => format!(
                    "received an unexpected ip number count {}, expected {}!",
                    theirs.len(),
                    mine.len()
                ),
            };
            push(
                Subject::Vips,
                format!(
                    "{} and {} list different virtual_ipaddress on VRID {} ({} / {}): keepalived 2.2.7 drops an \
                     advert whose addresses differ from its own (\"({}) {logged}\"), {split}",
                    m.name,
                    first.name,
                    m.vrid,
                    list(&mine),
                    list(&theirs),
                    m.instance,
                ),
                "give every node of the instance the same virtual_ipaddress list (another VIP set wants its own VRID)"
                    .to_string(),
            );
        }
    }
}

fn auth_code(auth: &Auth) -> u8 {
    match auth {
        Auth::None => 0,
        Auth::Pass(_) => 1,
    }
}

fn auth_word(auth: &Auth) -> &'static str {
    match auth {
        Auth::None => "none",
        Auth::Pass(_) => "PASS",
    }
}

/// Members of one router at the same priority. `vrrp_state_backup` accepts an equal-priority
/// advert, so the first to time out stays MASTER (measured: the real keepalived, the node started
/// 63 ms earlier kept it); `vrrp_state_master_rx` gives way to the higher address when two
/// masters meet (lvslab's own VRRP, both started in the same millisecond).
fn ties(members: &[Member], group: &[usize], out: &mut Vec<Contradiction>) {
    let mut seen: Vec<u8> = Vec::new();
    for &i in group {
        let priority = healthy(&members[i]);
        if seen.contains(&priority) {
            continue;
        }
        seen.push(priority);
        let tied: Vec<&Member> = group
            .iter()
            .map(|&j| &members[j])
            .filter(|m| healthy(m) == priority)
            .collect();
        if tied.len() < 2 {
            continue;
        }
        let names: Vec<&str> = tied.iter().map(|m| m.name.as_str()).collect();
        let names = match names.split_last() {
            Some((last, [one])) => format!("{one} and {last} both"),
            Some((last, rest)) => format!("{} and {last} all", rest.join(", ")),
            None => continue,
        };
        let among = if tied.len() == 2 { "between them" } else { "among them" };
        let all_master = tied.iter().all(|m| m.master);
        let stated = if all_master { " and state MASTER" } else { "" };
        let winner = tied
            .iter()
            .map(|m| m.address.map(|a| (a, *m)))
            .collect::<Option<Vec<_>>>()
            .and_then(|known| known.into_iter().max_by_key(|(a, _)| *a));
        let bump = priority.saturating_add(1).min(254);
        let (decided, hint) = match winner {
            Some((address, w)) => {
                let meant = tied.iter().find(|m| m.master && m.name != w.name);
                let hint = match meant {
                    Some(m) => format!(
                        "{} ({address}) wins whenever masters meet {among}, although {} says state = \"MASTER\"; \
                         give {} the higher priority, e.g. {bump}",
                        w.name, m.name, m.name
                    ),
                    None => format!(
                        "{} ({address}) wins whenever masters meet {among}; give the node meant to be MASTER the \
                         higher priority, e.g. {bump}",
                        w.name
                    ),
                };
                (format!("{} wins", w.name), hint)
            }
            None => (
                "the node with the higher interface address wins".to_string(),
                format!("give the node meant to be MASTER the higher priority, e.g. {bump}"),
            ),
        };
        let last = group
            .iter()
            .rev()
            .copied()
            .find(|&j| healthy(&members[j]) == priority)
            .unwrap_or(i);
        out.push(Contradiction {
            member: last,
            subject: Subject::Priority,
            message: format!(
                "{names} run VRID {} at priority {priority}{stated}: nothing decides between them but timing and \
                 addresses: a backup accepts an equal-priority advert (no preemption), so whoever's down timer fires \
                 first becomes MASTER and keeps it; when two masters meet (started together, a split brain \
                 healing) the higher primary address wins ({decided})",
                members[i].vrid
            ),
            hint,
        });
    }
}

/// Weighted tracks of the would-be master that cannot make it lose against the best of the
/// others (each at its healthy priority), with the weight that would.
fn idle_weights(members: &[Member], group: &[usize], out: &mut Vec<Contradiction>) {
    for &i in group {
        let m = &members[i];
        if m.priority == PRIO_OWNER {
            continue; // `owner` says its weights are ignored
        }
        let Some(top) = group
            .iter()
            .filter(|&&j| j != i)
            .map(|&j| &members[j])
            .max_by_key(|o| healthy(o))
        else {
            continue;
        };
        let rival = healthy(top);
        if healthy(m) <= rival {
            continue; // not the master (a tie is said by `ties`): its weights only matter against a third node
        }
        // A backup takes over only from a lower-priority advert (it accepts an equal one).
        let target = i64::from(rival) - 1;
        for (t, track) in m.tracks.iter().enumerate() {
            if track.weight == 0 {
                continue; // FAULT while failed: always gives the VIP up
            }
            let others: i64 = m
                .tracks
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != t)
                .map(|(_, o)| i64::from(o.weight.max(0)))
                .sum();
            let rest = i64::from(m.priority) + others;
            let failed = clamp_priority(rest + i64::from(track.weight.min(0)));
            if failed < rival {
                continue;
            }
            let what = format!("{} {} (weight {})", track.kind.keyword(), track.name, track.weight);
            let needed = target - rest;
            let possible = target >= 1 && needed >= -MAX_WEIGHT;
            let (message, hint) = if track.weight < 0 {
                (
                    format!(
                        "{what} can never move the VIP: while it fails {} runs at {failed}, not below {}'s {rival} (a \
                         backup takes over only from a lower priority)",
                        m.name, top.name
                    ),
                    if possible {
                        format!("a weight of {needed} or lower would ({rest} - {} = {target})", -needed)
                    } else {
                        "no weight can (priorities stay within 1..254): use weight = 0, FAULT while it fails"
                            .to_string()
                    },
                )
            } else {
                let fix = if possible {
                    format!("use weight = {needed} (taken off while it fails)")
                } else {
                    "use weight = 0 (FAULT while it fails)".to_string()
                };
                (
                    format!(
                        "{what} can never move the VIP: {} keeps it from {} at {rival} even without the +{} ({failed})",
                        m.name, top.name, track.weight
                    ),
                    format!(
                        "a positive weight is only added while the check is fine; {fix}, or lower {}'s priority so \
                         that the +{} decides",
                        m.name, track.weight
                    ),
                )
            };
            out.push(Contradiction {
                member: i,
                subject: Subject::Track(t),
                message,
                hint,
            });
        }
    }
}

/// Members on one link with the same VIP under different VRIDs: two routers, each MASTER.
fn other_vrids(members: &[Member], out: &mut Vec<Contradiction>) {
    let Some(first) = members.first() else { return };
    for (i, m) in members.iter().enumerate().skip(1) {
        if m.vrid == first.vrid || m.link != first.link {
            continue;
        }
        let shared: Vec<String> = m
            .vips
            .iter()
            .filter(|v| first.vips.contains(v))
            .map(Ipv4Addr::to_string)
            .collect();
        if shared.is_empty() {
            continue;
        }
        out.push(Contradiction {
            member: i,
            subject: Subject::Vrid,
            message: format!(
                "{} runs VRID {} and {} VRID {} for the same VIP {}: two separate virtual routers that ignore each \
                 other's adverts, so each is MASTER of the VIP: split brain",
                m.name,
                m.vrid,
                first.name,
                first.vrid,
                shared.join(", ")
            ),
            hint: "give every node of the instance the same virtual_router_id".to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, last: u8, priority: u8, master: bool) -> Member {
        Member {
            name: name.to_string(),
            instance: "VI_1".to_string(),
            address: Some(Ipv4Addr::new(192, 0, 2, last)),
            link: "lan".to_string(),
            vrid: 51,
            priority,
            master,
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            strict: false,
            version: Version::V2,
            advert_int: Duration::from_secs(1),
            auth: Auth::None,
            vips: vec![Ipv4Addr::new(192, 0, 2, 100)],
            tracks: Vec::new(),
        }
    }

    fn script(weight: i32) -> Tracked {
        Tracked {
            kind: TrackKind::Script,
            name: "chk".to_string(),
            weight,
        }
    }

    const ALL: Checks = Checks { fix_ups: true };

    fn subjects(found: &[Contradiction]) -> Vec<(usize, Subject)> {
        found.iter().map(|c| (c.member, c.subject)).collect()
    }

    #[test]
    fn a_healthy_pair_with_a_weight_that_flips_is_silent() {
        let mut master = member("lvs1", 11, 150, true);
        master.tracks.push(script(-60));
        let found = find(&[master, member("lvs2", 12, 100, false)], ALL);
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn equal_priorities_name_the_winner_by_address() {
        let found = find(&[member("lvs1", 11, 100, true), member("lvs2", 12, 100, true)], ALL);
        assert_eq!(subjects(&found), vec![(1, Subject::Priority)]);
        assert!(found[0]
            .message
            .contains("lvs1 and lvs2 both run VRID 51 at priority 100 and state MASTER"));
        assert!(found[0].message.contains("(lvs2 wins)"), "{}", found[0].message);
        assert!(
            found[0]
                .hint
                .starts_with("lvs2 (192.0.2.12) wins whenever masters meet between them"),
            "{}",
            found[0].hint
        );
        // One MASTER wish that the address overrules is named.
        let found = find(&[member("lvs1", 11, 100, true), member("lvs2", 12, 100, false)], ALL);
        assert!(
            found[0].hint.contains(", although lvs1 says state = \"MASTER\""),
            "{}",
            found[0].hint
        );
        // Unknown addresses: no winner named.
        let mut a = member("a.conf", 11, 100, true);
        a.address = None;
        let found = find(&[a, member("b.conf", 12, 100, false)], ALL);
        assert!(found[0]
            .message
            .contains("the node with the higher interface address wins"));
    }

    #[test]
    fn a_positive_weight_that_reaches_the_tie_counts_as_a_tie() {
        let mut backup = member("lvs2", 12, 100, false);
        backup.tracks.push(script(50));
        let found = find(&[member("lvs1", 11, 150, true), backup], ALL);
        assert_eq!(subjects(&found), vec![(1, Subject::Priority)], "{found:#?}");
    }

    #[test]
    fn a_weight_too_small_to_flip_says_the_weight_needed() {
        let mut master = member("lvs1", 11, 150, true);
        master.tracks.push(script(-30));
        let found = find(&[master.clone(), member("lvs2", 12, 100, false)], ALL);
        assert_eq!(subjects(&found), vec![(0, Subject::Track(0))]);
        assert!(
            found[0].message.contains("runs at 120, not below lvs2's 100"),
            "{}",
            found[0].message
        );
        assert_eq!(found[0].hint, "a weight of -51 or lower would (150 - 51 = 99)");
        // Down to a tie is not enough: the backup accepts an equal-priority advert.
        master.tracks[0].weight = -50;
        let found = find(&[master.clone(), member("lvs2", 12, 100, false)], ALL);
        assert_eq!(subjects(&found), vec![(0, Subject::Track(0))]);
        master.tracks[0].weight = -51;
        assert!(find(&[master, member("lvs2", 12, 100, false)], ALL).is_empty());
    }

    #[test]
    fn the_clamp_to_1_can_make_every_weight_too_small() {
        let mut master = member("lvs1", 12, 10, true);
        master.tracks.push(script(-253));
        let found = find(&[master, member("lvs2", 11, 1, false)], ALL);
        assert_eq!(subjects(&found), vec![(0, Subject::Track(0))]);
        assert!(
            found[0].message.contains("runs at 1, not below lvs2's 1"),
            "{}",
            found[0].message
        );
        assert!(found[0].hint.starts_with("no weight can"), "{}", found[0].hint);
    }

    #[test]
    fn a_positive_weight_on_a_master_that_wins_without_it_is_idle() {
        let mut master = member("lvs1", 11, 150, true);
        master.tracks.push(script(20));
        let found = find(&[master, member("lvs2", 12, 100, false)], ALL);
        assert_eq!(subjects(&found), vec![(0, Subject::Track(0))]);
        assert!(
            found[0].message.contains("even without the +20 (150)"),
            "{}",
            found[0].message
        );
        assert!(found[0].hint.contains("use weight = -51"), "{}", found[0].hint);
        // The same +20 flips when it is what lifts lvs1 above lvs2.
        let mut master = member("lvs1", 11, 90, true);
        master.tracks.push(script(20));
        assert!(find(&[master, member("lvs2", 12, 100, false)], ALL).is_empty());
    }

    #[test]
    fn symmetric_weights_and_fault_tracks_are_silent() {
        let mut a = member("lvs1", 11, 101, true);
        let mut b = member("lvs2", 12, 100, false);
        a.tracks.push(script(-2));
        b.tracks.push(script(-2));
        assert!(
            find(&[a.clone(), b.clone()], ALL).is_empty(),
            "the backup's weight needs no flip"
        );
        a.tracks[0].weight = 0;
        b.tracks[0].weight = 0;
        assert!(find(&[a, b], ALL).is_empty(), "weight 0 is FAULT: always flips");
    }

    #[test]
    fn nopreempt_and_preempt_delay_fix_ups_are_keepalived_s() {
        let mut master = member("lvs1", 11, 150, true);
        master.nopreempt = true;
        master.preempt_delay = Duration::from_secs(5);
        let mut backup = member("lvs2", 12, 100, false);
        backup.nopreempt = true;
        backup.preempt_delay = Duration::from_secs(5);
        let found = find(&[master, backup.clone()], ALL);
        assert_eq!(
            subjects(&found),
            vec![
                (0, Subject::Nopreempt),
                (0, Subject::PreemptDelay),
                (1, Subject::PreemptDelay)
            ]
        );
        assert!(found[0]
            .message
            .contains("\"(VI_1) Warning - nopreempt will not work with initial state MASTER - clearing\""));
        assert!(found[2]
            .message
            .contains("\"(VI_1) preempt_delay is incompatible with nopreempt mode - resetting\""));
        // The importer reports these itself.
        let mut master = member("lvs1", 11, 150, true);
        master.nopreempt = true;
        assert!(find(&[master, backup.clone()], Checks { fix_ups: false }).is_empty());
        // nopreempt on a BACKUP without a delay is what it is meant to be.
        backup.preempt_delay = Duration::ZERO;
        assert!(find(&[member("lvs1", 11, 150, false), backup], ALL).is_empty());
    }

    #[test]
    fn priority_255_is_an_owner_whose_weights_are_ignored() {
        let mut owner = member("lvs1", 11, 255, true);
        owner.tracks.push(script(-100));
        let found = find(&[owner, member("lvs2", 12, 100, false)], ALL);
        assert_eq!(subjects(&found), vec![(0, Subject::Priority)], "{found:#?}");
        assert!(
            found[0].message.contains("goes MASTER at start"),
            "{}",
            found[0].message
        );
        assert!(
            found[0].message.contains("track_script chk (weight -100)"),
            "{}",
            found[0].message
        );
        assert!(find(&[member("lvs1", 11, 254, true), member("lvs2", 12, 100, false)], ALL).is_empty());
    }

    #[test]
    fn adverts_a_peer_drops_are_split_brain() {
        let a = member("a.conf", 11, 150, true);
        let mut b = member("b.conf", 12, 100, false);
        b.advert_int = Duration::from_secs(2);
        b.auth = Auth::pass("secret");
        b.vips.push(Ipv4Addr::new(192, 0, 2, 101));
        let found = find(&[a.clone(), b.clone()], ALL);
        assert_eq!(
            subjects(&found),
            vec![(1, Subject::AdvertInt), (1, Subject::Auth), (1, Subject::Vips)]
        );
        assert!(found
            .iter()
            .all(|c| c.message.ends_with("never hear each other: split brain, both MASTER")));
        assert!(
            found[0].message.contains("mine=2 sec rcv'd=1 sec"),
            "{}",
            found[0].message
        );
        assert!(
            found[1].message.contains("received a 0 auth, expecting 1!"),
            "{}",
            found[1].message
        );
        assert!(
            found[2]
                .message
                .contains("\"(VI_1) received an unexpected ip number count 1, expected 2!\""),
            "{}",
            found[2].message
        );
        let mut other = member("b.conf", 12, 100, false);
        other.vips = vec![Ipv4Addr::new(192, 0, 2, 101)];
        let found = find(&[a.clone(), other], ALL);
        assert!(
            found[0]
                .message
                .contains("ip address associated with VRID 51 not present in MASTER advert: 192.0.2.101"),
            "{}",
            found[0].message
        );
        // Another version hides the rest: nothing else gets through.
        b.version = Version::V3;
        let found = find(&[a.clone(), b.clone()], ALL);
        assert_eq!(subjects(&found), vec![(1, Subject::Version)]);
        // VRRPv3 adopts the master's interval: said, but not a split brain.
        let mut a3 = a.clone();
        a3.version = Version::V3;
        let mut b3 = member("b.conf", 12, 100, false);
        b3.version = Version::V3;
        b3.advert_int = Duration::from_millis(500);
        let found = find(&[a3, b3], ALL);
        assert_eq!(subjects(&found), vec![(1, Subject::AdvertInt)]);
        assert!(found[0].message.contains("no split brain"), "{}", found[0].message);
        // Another interface is another router: nothing is compared.
        b.link = "eth1".to_string();
        assert!(find(&[a, b], ALL).is_empty());
    }

    #[test]
    fn the_same_vip_under_another_vrid_is_a_second_router() {
        let mut b = member("lvs2", 12, 100, false);
        b.vrid = 52;
        let found = find(&[member("lvs1", 11, 150, true), b.clone()], ALL);
        assert_eq!(subjects(&found), vec![(1, Subject::Vrid)]);
        b.vips = vec![Ipv4Addr::new(192, 0, 2, 50)];
        assert!(find(&[member("lvs1", 11, 150, true), b], ALL).is_empty());
    }
}
