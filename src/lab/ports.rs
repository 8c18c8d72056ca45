//! Choosing listen ports for a lab's members.
//!
//! Ports are fixed for a member's lifetime (peers and etcdctl remember them), so they are
//! taken below the kernel's ephemeral range: a port inside it may be handed to some outgoing
//! connection while its member is down, and the member could not come back. A port is
//! chosen by listening on it, and the listener itself is handed to the member process (see
//! `process.rs`), so there is no moment when another lab could take the same port; ports
//! used by other labs in the same home are avoided even when those labs are stopped.

use std::collections::HashSet;
use std::net::TcpListener;

use anyhow::Result;
use rand::Rng;

/// Where Linux starts handing out ephemeral ports when `ip_local_port_range` is unreadable.
const DEFAULT_EPHEMERAL_START: u16 = 32768;
const LOWEST_PORT: u16 = 10000;

fn ephemeral_range_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(DEFAULT_EPHEMERAL_START)
}

/// Reserves `count` distinct free ports, none of them in `taken`, by listening on them: as
/// long as the listeners live nobody else can take the ports, and the supervisor hands them
/// to the member process that will serve on them.
pub fn reserve_free_ports(count: usize, taken: &HashSet<u16>) -> Result<Vec<TcpListener>> {
    let high = ephemeral_range_start();
    anyhow::ensure!(
        high > LOWEST_PORT + 1000,
        "the ephemeral port range starts at {high}, leaving no room below it for lab ports"
    );
    let mut rng = rand::rng();
    let mut held: Vec<TcpListener> = Vec::with_capacity(count);
    let mut attempts = 0;
    while held.len() < count {
        attempts += 1;
        anyhow::ensure!(attempts < 10_000, "could not find {count} free ports between {LOWEST_PORT} and {high}");
        let port = rng.random_range(LOWEST_PORT..high);
        if taken.contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    Ok(held)
}

/// Picks `count` free ports and lets them go again (for programs that bind themselves).
pub fn pick_free_ports(count: usize, taken: &HashSet<u16>) -> Result<Vec<u16>> {
    reserve_free_ports(count, taken)?.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_free_and_below_the_ephemeral_range() {
        let taken: HashSet<u16> = (LOWEST_PORT..LOWEST_PORT + 5000).collect();
        let ports = pick_free_ports(20, &taken).unwrap();
        let unique: HashSet<_> = ports.iter().collect();
        assert_eq!(unique.len(), 20);
        for p in ports {
            assert!(!taken.contains(&p));
            assert!(p < ephemeral_range_start());
            TcpListener::bind(("127.0.0.1", p)).expect("a chosen port is free once released");
        }
    }
}
