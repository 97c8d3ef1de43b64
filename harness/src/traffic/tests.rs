//! Servers and traffic together, on loopback (and in a throw-away namespace).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::runtime::Handle;

use super::*;
use crate::realserver::test_support::{is_root, TestNetns};
use crate::realserver::{self, Behaviour, RunningServer, ServerSpec};

const TIMEOUT: Duration = Duration::from_secs(5);

async fn server(name: &str, bind: &str, proto: Proto, behaviour: Behaviour) -> RunningServer {
    let spec = ServerSpec {
        name: name.into(),
        bind: bind.parse().unwrap(),
        proto,
        behaviour,
    };
    realserver::start(&Handle::current(), spec)
        .await
        .expect("server starts")
}

fn spec(targets: Vec<SocketAddr>, proto: Proto, requests: u32, mode: ConnectionMode) -> TrafficSpec {
    TrafficSpec {
        targets,
        proto,
        requests,
        mode,
        concurrency: 1,
        sources: Vec::new(),
        source_port: None,
        timeout: TIMEOUT,
        path: "/".into(),
        client: "c1".into(),
        body: bytes::Bytes::new(),
    }
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port(proto: Proto) -> u16 {
    match proto {
        Proto::Tcp => std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        Proto::Udp => std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    }
}

fn addr(server: &RunningServer) -> SocketAddr {
    server.local_addr().expect("listening")
}

fn assert_all_ok(records: &[RequestRecord]) {
    for record in records {
        assert!(record.is_ok(), "request failed: {record:?}");
    }
}

#[tokio::test]
async fn round_robin_over_three_backends_names_each_and_sees_the_client() {
    let servers = [
        server("rs1", "127.0.0.2:0", Proto::Tcp, Behaviour::Up).await,
        server("rs2", "127.0.0.3:0", Proto::Tcp, Behaviour::Up).await,
        server("rs3", "127.0.0.4:0", Proto::Tcp, Behaviour::Up).await,
    ];
    let targets: Vec<_> = servers.iter().map(addr).collect();
    let records = fire(
        &Handle::current(),
        spec(targets.clone(), Proto::Tcp, 30, ConnectionMode::KeepAlive),
        None,
    )
    .await;
    assert_eq!(records.len(), 30);
    assert_all_ok(&records);
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record.seq as usize, index);
        assert_eq!(record.target, targets[index % 3]);
        assert_eq!(record.backend.as_deref(), Some(servers[index % 3].name()));
        assert_eq!(record.seen_as, record.local, "no NAT on loopback");
        assert_eq!(record.client, "c1");
    }
    for server in servers {
        assert_eq!(server.served(), 10);
        server.stop().await;
    }
}

#[tokio::test]
async fn keep_alive_reuses_connections_and_new_does_not() {
    let rs = server("rs1", "127.0.0.1:0", Proto::Tcp, Behaviour::Up).await;
    let fresh = fire(
        &Handle::current(),
        spec(vec![addr(&rs)], Proto::Tcp, 10, ConnectionMode::New),
        None,
    )
    .await;
    let kept = fire(
        &Handle::current(),
        spec(vec![addr(&rs)], Proto::Tcp, 10, ConnectionMode::KeepAlive),
        None,
    )
    .await;
    assert_all_ok(&fresh);
    assert_all_ok(&kept);
    let connections = |records: &[RequestRecord]| records.iter().map(|r| r.connection).collect::<HashSet<_>>().len();
    let ports = |records: &[RequestRecord]| {
        records
            .iter()
            .map(|r| r.local.unwrap().port())
            .collect::<HashSet<_>>()
            .len()
    };
    assert_eq!(connections(&fresh), 10);
    assert_eq!(ports(&fresh), 10);
    assert_eq!(connections(&kept), 1);
    assert_eq!(ports(&kept), 1);
    assert_eq!(rs.served(), 20);
    rs.stop().await;
}

#[tokio::test]
async fn nothing_listening_is_refused() {
    for proto in [Proto::Tcp, Proto::Udp] {
        let refusing = server("rs1", "127.0.0.1:0", proto, Behaviour::Refuse).await;
        assert_eq!(refusing.local_addr(), None);
        let target = SocketAddr::from(([127, 0, 0, 1], closed_port(proto)));
        let records = fire(
            &Handle::current(),
            spec(vec![target], proto, 2, ConnectionMode::New),
            None,
        )
        .await;
        for record in &records {
            assert_eq!(record.error, Some(RequestError::Refused), "{proto:?}: {record:?}");
            assert_eq!(record.backend, None);
        }
        assert_ne!(
            records[0].connection, records[1].connection,
            "each attempt has its ordinal"
        );
    }
}

#[tokio::test]
async fn slow_server_beyond_the_timeout_is_a_timeout() {
    let rs = server(
        "slow",
        "127.0.0.1:0",
        Proto::Tcp,
        Behaviour::Slow(Duration::from_secs(3)),
    )
    .await;
    let mut traffic = spec(vec![addr(&rs)], Proto::Tcp, 1, ConnectionMode::New);
    traffic.timeout = Duration::from_millis(200);
    let records = fire(&Handle::current(), traffic, None).await;
    assert_eq!(records[0].error, Some(RequestError::Timeout));
    assert!(
        records[0].latency >= Duration::from_millis(200),
        "{:?}",
        records[0].latency
    );
    assert!(records[0].latency < Duration::from_secs(3), "{:?}", records[0].latency);
    assert!(records[0].local.is_some(), "connected before timing out");
    rs.stop().await;
}

#[tokio::test]
async fn slow_server_within_the_timeout_answers() {
    let rs = server(
        "slow",
        "127.0.0.1:0",
        Proto::Udp,
        Behaviour::Slow(Duration::from_millis(50)),
    )
    .await;
    let records = fire(
        &Handle::current(),
        spec(vec![addr(&rs)], Proto::Udp, 2, ConnectionMode::KeepAlive),
        None,
    )
    .await;
    assert_all_ok(&records);
    assert!(records.iter().all(|r| r.latency >= Duration::from_millis(50)));
    rs.stop().await;
}

#[tokio::test]
async fn error_server_answers_500_and_still_names_itself() {
    for proto in [Proto::Tcp, Proto::Udp] {
        let rs = server("broken", "127.0.0.1:0", proto, Behaviour::Error).await;
        let records = fire(
            &Handle::current(),
            spec(vec![addr(&rs)], proto, 3, ConnectionMode::KeepAlive),
            None,
        )
        .await;
        for record in &records {
            assert_eq!(record.error, Some(RequestError::Http(500)), "{proto:?}");
            assert_eq!(record.backend.as_deref(), Some("broken"));
        }
        assert_eq!(rs.served(), 3);
        rs.stop().await;
    }
}

#[tokio::test]
async fn udp_replies_come_from_the_address_the_datagram_was_sent_to() {
    // Wildcard bind; the client's connected socket accepts only replies from the exact target.
    let rs = server("u1", "0.0.0.0:0", Proto::Udp, Behaviour::Up).await;
    let port = addr(&rs).port();
    let targets = vec![
        SocketAddr::from(([127, 0, 0, 2], port)),
        SocketAddr::from(([127, 0, 0, 3], port)),
    ];
    for mode in [ConnectionMode::New, ConnectionMode::KeepAlive] {
        let records = fire(&Handle::current(), spec(targets.clone(), Proto::Udp, 6, mode), None).await;
        assert_all_ok(&records);
        for record in &records {
            assert_eq!(record.backend.as_deref(), Some("u1"));
            assert_eq!(record.seen_as, record.local);
        }
        let sockets = records.iter().map(|r| r.connection).collect::<HashSet<_>>().len();
        assert_eq!(sockets, if mode == ConnectionMode::New { 6 } else { 2 }, "{mode:?}");
    }
    assert_eq!(rs.served(), 12);
    rs.stop().await;
}

#[tokio::test]
async fn concurrent_workers_answer_every_request_in_seq_order() {
    let rs = server("rs1", "127.0.0.1:0", Proto::Tcp, Behaviour::Up).await;
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut traffic = spec(vec![addr(&rs)], Proto::Tcp, 40, ConnectionMode::KeepAlive);
    traffic.concurrency = 4;
    let records = fire(&Handle::current(), traffic, Some(progress_tx)).await;
    assert_all_ok(&records);
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..40).collect::<Vec<_>>()
    );
    let connections = records.iter().map(|r| r.connection).collect::<HashSet<_>>().len();
    assert_eq!(connections, 4, "one kept-alive connection per worker");
    let mut ticks = 0;
    while progress_rx.try_recv().is_ok() {
        ticks += 1;
    }
    assert_eq!(ticks, 40);
    rs.stop().await;
}

#[tokio::test]
async fn source_addresses_and_fixed_source_port_are_what_the_server_sees() {
    let rs = server("rs1", "127.0.0.1:0", Proto::Tcp, Behaviour::Up).await;
    let mut traffic = spec(vec![addr(&rs)], Proto::Tcp, 4, ConnectionMode::New);
    traffic.sources = vec![Ipv4Addr::new(127, 0, 0, 5), Ipv4Addr::new(127, 0, 0, 6)];
    let records = fire(&Handle::current(), traffic, None).await;
    assert_all_ok(&records);
    let seen: Vec<_> = records.iter().map(|r| r.seen_as.unwrap().ip().to_string()).collect();
    assert_eq!(seen, ["127.0.0.5", "127.0.0.6", "127.0.0.5", "127.0.0.6"]);

    let port = closed_port(Proto::Tcp);
    let mut fixed = spec(vec![addr(&rs)], Proto::Tcp, 1, ConnectionMode::New);
    fixed.source_port = Some(port);
    let records = fire(&Handle::current(), fixed, None).await;
    assert_all_ok(&records);
    assert_eq!(records[0].seen_as.unwrap().port(), port);
    rs.stop().await;
}

#[tokio::test]
async fn successive_connections_from_one_fixed_source_port_all_connect() {
    // A normal close would leave the client's end in TIME_WAIT and the second connect
    // from the same ip:port to the same server would fail (EADDRNOTAVAIL).
    let rs = server("rs1", "127.0.0.1:0", Proto::Tcp, Behaviour::Up).await;
    let port = closed_port(Proto::Tcp);
    let mut fixed = spec(vec![addr(&rs)], Proto::Tcp, 6, ConnectionMode::New);
    fixed.source_port = Some(port);
    let records = fire(&Handle::current(), fixed, None).await;
    assert_all_ok(&records);
    let ports: HashSet<u16> = records.iter().map(|r| r.seen_as.unwrap().port()).collect();
    assert_eq!(ports, HashSet::from([port]));
    let connections: HashSet<u32> = records.iter().map(|r| r.connection).collect();
    assert_eq!(connections.len(), 6, "a new connection per request");
    rs.stop().await;
}

#[tokio::test]
async fn stopped_server_refuses_and_open_keep_alive_connections_close() {
    let rs = server("rs1", "127.0.0.1:0", Proto::Tcp, Behaviour::Up).await;
    let target = addr(&rs);
    let records = fire(
        &Handle::current(),
        spec(vec![target], Proto::Tcp, 1, ConnectionMode::KeepAlive),
        None,
    )
    .await;
    assert_all_ok(&records);
    rs.stop().await;
    let records = fire(
        &Handle::current(),
        spec(vec![target], Proto::Tcp, 1, ConnectionMode::New),
        None,
    )
    .await;
    assert_eq!(records[0].error, Some(RequestError::Refused));
}

#[tokio::test]
async fn bad_input_gives_error_records_not_a_hang() {
    let records = fire(
        &Handle::current(),
        spec(Vec::new(), Proto::Tcp, 3, ConnectionMode::New),
        None,
    )
    .await;
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| matches!(r.error, Some(RequestError::Other(_)))));
    let none = fire(
        &Handle::current(),
        spec(vec!["127.0.0.1:1".parse().unwrap()], Proto::Tcp, 0, ConnectionMode::New),
        None,
    )
    .await;
    assert!(none.is_empty());

    let taken = server("rs1", "127.0.0.1:0", Proto::Tcp, Behaviour::Up).await;
    let clash = ServerSpec {
        name: "rs2".into(),
        bind: addr(&taken),
        proto: Proto::Tcp,
        behaviour: Behaviour::Up,
    };
    let err = realserver::start(&Handle::current(), clash).await.unwrap_err();
    assert!(err.to_string().contains("cannot bind"), "{err}");
    taken.stop().await;
}

#[tokio::test]
async fn sockets_belong_to_the_namespace_of_the_runtime_given() {
    if !is_root() {
        eprintln!("skipped: creating a network namespace needs root");
        return;
    }
    let server_ns = TestNetns::new().unwrap();
    let spec_rs = ServerSpec {
        name: "ns-rs".into(),
        bind: "127.0.0.1:0".parse().unwrap(),
        proto: Proto::Tcp,
        behaviour: Behaviour::Up,
    };
    let rs = realserver::start(server_ns.handle(), spec_rs).await.unwrap();
    let target = addr(&rs);
    // From the namespace the server lives in: answered.
    let inside = fire(
        server_ns.handle(),
        spec(vec![target], Proto::Tcp, 3, ConnectionMode::New),
        None,
    )
    .await;
    assert_all_ok(&inside);
    assert_eq!(inside[0].backend.as_deref(), Some("ns-rs"));
    // From this test's namespace the same address has no listener.
    let outside = fire(
        &Handle::current(),
        spec(vec![target], Proto::Tcp, 1, ConnectionMode::New),
        None,
    )
    .await;
    assert_eq!(outside[0].error, Some(RequestError::Refused));
    rs.stop().await;
}

/// TCP sockets of the calling thread's namespace in TIME_WAIT, split by whether their local
/// port is `server_port` (the server's end) or not (a client's end).
fn time_wait_ends(server_port: u16) -> (usize, usize) {
    const TIME_WAIT: &str = "06";
    let table = std::fs::read_to_string("/proc/thread-self/net/tcp").expect("read /proc/thread-self/net/tcp");
    let (mut server, mut client) = (0, 0);
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
            continue;
        };
        if *state != TIME_WAIT {
            continue;
        }
        let port = local
            .rsplit(':')
            .next()
            .and_then(|hex| u16::from_str_radix(hex, 16).ok())
            .expect("local address ends in :PORT in hex");
        if port == server_port {
            server += 1;
        } else {
            client += 1;
        }
    }
    (server, client)
}

/// A fresh namespace whose ephemeral port range is `low..=high`, with a server `name` on
/// 127.0.0.1:80 (outside the range).
async fn namespace_with_ports(low: u16, high: u16, proto: Proto) -> (TestNetns, RunningServer) {
    let ns = TestNetns::new().expect("namespace");
    let range = format!("{low} {high}");
    ns.run(move || crate::realserver::test_support::sysctl("net/ipv4/ip_local_port_range", &range))
        .await
        .expect("set ip_local_port_range");
    let spec = ServerSpec {
        name: "rs1".into(),
        bind: "127.0.0.1:80".parse().unwrap(),
        proto,
        behaviour: Behaviour::Up,
    };
    let rs = realserver::start(ns.handle(), spec).await.expect("server starts");
    (ns, rs)
}

#[tokio::test]
async fn new_connections_leave_no_client_time_wait_the_server_closes_first() {
    if !is_root() {
        eprintln!("skipped: creating a network namespace needs root");
        return;
    }
    const PER_RUN: u32 = 100;
    let (ns, rs) = namespace_with_ports(32768, 60999, Proto::Tcp).await;
    let target = addr(&rs);
    // Bound to an address (as every lab client is) and left to the kernel.
    for sources in [vec![Ipv4Addr::LOCALHOST], vec![]] {
        let mut traffic = spec(vec![target], Proto::Tcp, PER_RUN, ConnectionMode::New);
        traffic.concurrency = 4;
        traffic.sources = sources;
        let records = fire(ns.handle(), traffic, None).await;
        assert_all_ok(&records);
    }
    // The server's end enters TIME_WAIT when the client's FIN arrives: wait for all of them.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (server, client) = loop {
        let (server, client) = ns.run(move || time_wait_ends(80)).await;
        if server >= 2 * PER_RUN as usize || std::time::Instant::now() > deadline {
            break (server, client);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(client, 0, "client ends left in TIME_WAIT");
    assert_eq!(
        server,
        2 * PER_RUN as usize,
        "every connection closed by the server first"
    );
    rs.stop().await;
}

#[tokio::test]
async fn a_bound_source_address_leaves_the_port_to_connect() {
    use nix::sys::socket::{getsockopt, sockopt};
    let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let bound = http_client::source_socket(
        target,
        Some("127.0.0.1:0".parse().unwrap()),
        http_client::Close::ServerFirst,
    )
    .expect("socket bound");
    assert!(getsockopt(&bound, sockopt::IpBindAddressNoPort).unwrap());
    assert_eq!(bound.local_addr().unwrap().port(), 0, "no port taken at bind");
    let pinned_port = closed_port(Proto::Tcp);
    let pinned = http_client::source_socket(
        target,
        Some(SocketAddr::from(([127, 0, 0, 1], pinned_port))),
        http_client::Close::Reset,
    )
    .expect("socket bound");
    assert!(!getsockopt(&pinned, sockopt::IpBindAddressNoPort).unwrap());
    assert!(getsockopt(&pinned, sockopt::ReuseAddr).unwrap());
    assert_eq!(pinned.local_addr().unwrap().port(), pinned_port);
}

#[tokio::test]
async fn one_source_port_serves_several_destinations_at_once() {
    if !is_root() {
        eprintln!("skipped: creating a network namespace needs root");
        return;
    }
    // Two ports, both held by open connections to another address: a bind would find none
    // free, but a connect to rs1 may use them again (another 4-tuple).
    let (ns, rs) = namespace_with_ports(40000, 40001, Proto::Tcp).await;
    let held = ns
        .handle()
        .spawn(async {
            let listener = std::net::TcpListener::bind("127.0.0.2:81").expect("holder listener");
            let mut streams = Vec::new();
            for _ in 0..2 {
                let socket = http_client::source_socket(
                    "127.0.0.2:81".parse().unwrap(),
                    Some("127.0.0.1:0".parse().unwrap()),
                    http_client::Close::ClientFirst,
                )
                .expect("holder socket");
                streams.push(
                    socket
                        .connect("127.0.0.2:81".parse().unwrap())
                        .await
                        .expect("holder connects"),
                );
            }
            let plain_bind = tokio::net::TcpSocket::new_v4()
                .and_then(|s| s.bind("127.0.0.1:0".parse().unwrap()))
                .map_err(|e| e.raw_os_error());
            (listener, streams, plain_bind)
        })
        .await
        .unwrap();
    let (_listener, streams, plain_bind) = held;
    assert_eq!(plain_bind, Err(Some(libc::EADDRINUSE)), "both ports are in use");
    let mut traffic = spec(vec![addr(&rs)], Proto::Tcp, 4, ConnectionMode::New);
    traffic.sources = vec![Ipv4Addr::LOCALHOST];
    let records = fire(ns.handle(), traffic, None).await;
    assert_all_ok(&records);
    for record in &records {
        let port = record.local.unwrap().port();
        assert!((40000..=40001).contains(&port), "{record:?}");
    }
    drop(streams);
    rs.stop().await;
}

/// Binds `proto` sockets to 127.0.0.1:0 until the kernel finds no port: the holders and
/// the error that stopped them. At most `limit` + 1 tries.
fn hold_every_port(proto: Proto, limit: usize) -> (Vec<std::os::fd::OwnedFd>, Option<nix::errno::Errno>) {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let kind = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let mut holders = Vec::new();
    for _ in 0..=limit {
        let fd = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None).expect("socket");
        let any_port = SockaddrIn::new(127, 0, 0, 1, 0);
        match bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &any_port) {
            Ok(()) => holders.push(fd),
            Err(errno) => return (holders, Some(errno)),
        }
    }
    (holders, None)
}

#[tokio::test]
async fn every_source_port_in_use_is_named_as_such() {
    if !is_root() {
        eprintln!("skipped: creating a network namespace needs root");
        return;
    }
    for proto in [Proto::Tcp, Proto::Udp] {
        let (ns, rs) = namespace_with_ports(40000, 40003, proto).await;
        let (holders, stopped_by) = ns.run(move || hold_every_port(proto, 4)).await;
        assert_eq!(holders.len(), 4, "{proto:?}: the range has four ports");
        assert_eq!(stopped_by, Some(nix::errno::Errno::EADDRINUSE), "{proto:?}");
        // Bound to an address and left to the kernel: the same limit, the same name.
        for sources in [vec![Ipv4Addr::LOCALHOST], vec![]] {
            let mut traffic = spec(vec![addr(&rs)], proto, 3, ConnectionMode::New);
            traffic.sources = sources.clone();
            let records = fire(ns.handle(), traffic, None).await;
            for record in &records {
                assert_eq!(
                    record.error,
                    Some(RequestError::SourcePortsExhausted),
                    "{proto:?} from {sources:?}: {record:?}"
                );
            }
        }
        // The ports were the limit: once they are free, the same traffic is answered.
        drop(holders);
        let mut traffic = spec(vec![addr(&rs)], proto, 3, ConnectionMode::New);
        traffic.sources = vec![Ipv4Addr::LOCALHOST];
        assert_all_ok(&fire(ns.handle(), traffic, None).await);
        rs.stop().await;
    }
}

#[tokio::test]
async fn paced_requests_go_out_at_their_slot_and_the_end_bounds_them() {
    let rs = server("rs1", "127.0.0.2:0", Proto::Tcp, Behaviour::Up).await;
    let mut s = spec(vec![addr(&rs)], Proto::Tcp, 1000, ConnectionMode::New);
    s.concurrency = 4;
    let (sent_tx, sent_rx) = tokio::sync::watch::channel(0u64);
    let schedule = Schedule {
        start: std::time::Instant::now(),
        pacing: Some(Pacing::share_of(200.0, 1, 0)),
        stop_after: Some(Duration::from_millis(100)),
        sent: Some(sent_tx),
    };
    let records = fire_scheduled(&Handle::current(), s, schedule, None).await;
    // 200/s for 100 ms: slots 0, 5, ..., 95 ms.
    assert_eq!(records.len(), 20);
    assert_eq!(*sent_rx.borrow(), 20);
    assert_all_ok(&records);
    for r in &records {
        let due = Duration::from_millis(5) * r.seq;
        assert!(
            r.sent_at >= due,
            "request {} sent before its slot: {:?}",
            r.seq,
            r.sent_at
        );
    }
    // Scheduled from the start, not after each answer: the last slot is not pushed back by
    // the 19 exchanges before it (generous bound for a loaded machine).
    let last = records.last().unwrap();
    assert!(
        last.sent_at < Duration::from_millis(95 + 60),
        "late: {:?}",
        last.sent_at
    );
}

#[tokio::test]
async fn back_to_back_records_carry_rising_send_times() {
    let rs = server("rs1", "127.0.0.2:0", Proto::Tcp, Behaviour::Up).await;
    let records = fire(
        &Handle::current(),
        spec(vec![addr(&rs)], Proto::Tcp, 5, ConnectionMode::New),
        None,
    )
    .await;
    assert_all_ok(&records);
    assert!(records.windows(2).all(|w| w[0].sent_at + w[0].latency <= w[1].sent_at));
}

async fn one(target: SocketAddr, proto: Proto) -> RequestRecord {
    let mut records = fire(
        &Handle::current(),
        spec(vec![target], proto, 1, ConnectionMode::New),
        None,
    )
    .await;
    records.remove(0)
}

#[tokio::test]
async fn a_halted_server_refuses_and_resumes_on_the_same_port() {
    for proto in [Proto::Tcp, Proto::Udp] {
        let mut rs = server("rs1", "127.0.0.1:0", proto, Behaviour::Up).await;
        let target = addr(&rs);
        assert!(one(target, proto).await.is_ok());
        rs.halt().await;
        assert!(!rs.is_listening());
        assert_eq!(one(target, proto).await.error, Some(RequestError::Refused), "{proto:?}");
        rs.resume().await.expect("binds its port again");
        assert_eq!(rs.local_addr(), Some(target));
        let back = one(target, proto).await;
        assert!(back.is_ok(), "{proto:?}: {back:?}");
        assert_eq!(rs.served(), 2);
        rs.stop().await;
    }
}

/// One raw HTTP/1.1 exchange on an open stream; returns the status line.
async fn get(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_refusing_server_still_serves_the_connections_it_had() {
    let mut rs = server("rs1", "127.0.0.1:0", Proto::Tcp, Behaviour::Up).await;
    let target = addr(&rs);
    let mut open = tokio::net::TcpStream::connect(target).await.unwrap();
    assert_eq!(get(&mut open).await, "HTTP/1.1 200 OK");
    rs.refuse().await;
    assert_eq!(one(target, Proto::Tcp).await.error, Some(RequestError::Refused));
    assert_eq!(get(&mut open).await, "HTTP/1.1 200 OK");
    rs.stop().await;
}

#[tokio::test]
async fn behaviour_changes_apply_to_the_next_request() {
    let rs = server("rs1", "127.0.0.1:0", Proto::Tcp, Behaviour::Up).await;
    let target = addr(&rs);
    rs.set_behaviour(Behaviour::Status(503));
    let failed = one(target, Proto::Tcp).await;
    assert_eq!(failed.error, Some(RequestError::Http(503)));
    assert_eq!(failed.backend.as_deref(), Some("rs1"));
    rs.set_behaviour(Behaviour::Slow(Duration::from_millis(150)));
    let slow = one(target, Proto::Tcp).await;
    assert!(slow.is_ok() && slow.latency >= Duration::from_millis(150), "{slow:?}");
    rs.set_behaviour(Behaviour::Up);
    assert!(one(target, Proto::Tcp).await.is_ok());
    rs.stop().await;
}
