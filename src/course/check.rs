//! Checks: what a step asks of the live cluster, built from a library of predicates that
//! lesson authors combine (`all`, `any`, `not`), with time in them (`eventually` within a
//! window, `holds_for` a while) and values captured when the step began (`start`).
//!
//! A failing check says what is still missing, in the learner's terms. Every predicate is
//! listed, with its fields, in `lessons/README.md`.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;

use crate::course::observe;
use crate::course::observe::Moment;
use crate::lab::Lab;

/// A duration written as etcd and raftty write them: "500ms", "3s", "1m".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(Dur)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration such as \"3s\": {e}")))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// Every check holds.
    All(Vec<Check>),
    /// At least one holds.
    Any(Vec<Check>),
    /// The check does not hold.
    Not(Box<Check>),
    /// The check holds at some moment no later than `within` after the step began (and
    /// counts from then on).
    Eventually { within: Dur, check: Box<Check> },
    /// The check has held, without a break, for `duration`.
    HoldsFor { duration: Dur, check: Box<Check> },

    /// A leader other than the one at the step's start, in a higher term.
    LeaderChanged {},
    /// The term is at least `by` (default 1) higher than at the step's start.
    TermIncreased { by: Option<u64> },
    /// The members agree on a leader.
    HasLeader {},
    /// No leader is agreed on.
    NoLeader {},
    /// A majority of the voters runs and answers (`present = true`), or not.
    Quorum { present: bool },
    /// Member `name` (or `{start.leader}`...) is in `state` (running, paused, killed, exited,
    /// down = any but running, removed = no longer in the cluster) and/or has `role` (leader,
    /// follower, candidate, learner).
    Member { name: String, state: Option<String>, role: Option<String> },
    /// How many members the cluster has.
    MemberCount { equals: Option<usize>, at_least: Option<usize> },
    /// How many members run (not killed, stopped or paused).
    Running { equals: Option<usize>, at_least: Option<usize>, at_most: Option<usize> },
    /// Some member is a learner.
    LearnerPresent {},
    /// `key` has `value` (or is absent, with `absent = true`), read through `via` (default:
    /// the leader), linearizable unless `serializable = true`.
    Key {
        key: String,
        value: Option<String>,
        #[serde(default)]
        absent: bool,
        via: Option<String>,
        #[serde(default)]
        serializable: bool,
        /// The key's own count of changes since it was created.
        version: Option<i64>,
    },
    /// The revision is at least `revision`, or has grown by at least `grown_by` since the
    /// step began.
    Revision { at_least: Option<i64>, grown_by: Option<i64> },
    /// A write through `via` (default: the leader, else any member) commits within `within`
    /// (default 2s).
    WriteCommits { via: Option<String>, within: Option<Dur> },
    /// A write through `via` does not commit within `for` (default 2s).
    WriteStalls {
        via: Option<String>,
        #[serde(rename = "for")]
        wait: Option<Dur>,
    },
    /// An alarm (NOSPACE, CORRUPT) is raised, or none is (`present = false`).
    Alarm { present: bool },
    /// Since the step began, a member refused a client's certificate (with CN `cn`, if given).
    CertificateRefused { cn: Option<String> },
    /// Since the step began, a member refused a request of `user` (any user if not given).
    PermissionDenied { user: Option<String> },
    /// Since the step began, a change happened that a watch of `key`, or of `prefix` (the
    /// whole keyspace if neither), reports: a put or a delete (`event`), with `value`. The
    /// checker opens that watch itself, from the step's first revision.
    WatchSaw { key: Option<String>, prefix: Option<String>, event: Option<String>, value: Option<String> },
    /// A lease is alive (`alive = true`): attached to `key`, or any lease. Or not (`false`):
    /// `key` is held by no live lease (it is gone, or its lease is), or without `key`, a
    /// lease alive when the step began has expired or was revoked.
    Lease { alive: bool, key: Option<String> },
    /// Every running member's database file (or `via`'s) is smaller than when the step
    /// began, as after a compaction and a defragmentation.
    DbShrank { via: Option<String> },
    /// Every running member holds the same data: their HashKV agree at the leader's revision.
    HashKvEqual {},
    /// A whole snapshot file (its SHA-256 trailer checks) is at `path` (relative: in the
    /// lab's backup folder `{backups}`), at revision `revision_at_least` or later, holding
    /// the live key `key` if given.
    SnapshotFile { path: String, revision_at_least: Option<Num>, key: Option<String> },
    /// The store was compacted: its history starts at `at_least` or later (any compaction
    /// if not given).
    Compacted { at_least: Option<Num> },
    /// The continuous backup (`raftty backup`) in `path` (relative: in `{backups}`) can
    /// restore `revision`: it has recorded everything up to it.
    BackupCovers { path: String, revision: Num },
    /// Auth is on (`enabled = true`) or off.
    Auth { enabled: bool },
    /// The user exists and holds the role.
    UserRole { user: String, role: String },
    /// Step mode is on (`on = true`, with heartbeats flowing if `auto_heartbeats` says so)
    /// or off.
    StepMode { on: bool, auto_heartbeats: Option<bool> },
    /// Step mode holds at least `at_least` (default 1), or at most `at_most`, messages of
    /// `kind` (append, append-response, vote, prevote, ...; any if not given) from `from` to
    /// `to`; with `entries = true` only appends carrying entries and their answers count.
    Held {
        kind: Option<String>,
        from: Option<String>,
        to: Option<String>,
        #[serde(default)]
        entries: bool,
        at_least: Option<usize>,
        at_most: Option<usize>,
    },
}

/// A number in a check, written as one (`5`) or as a placeholder (`"{start.revision}"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Num {
    Int(i64),
    Text(String),
}

impl Num {
    fn value(&self, start: &Moment, now: &Moment) -> Result<i64, String> {
        match self {
            Num::Int(n) => Ok(*n),
            Num::Text(t) => {
                let filled = fill(t, start, now);
                filled.trim().parse().map_err(|_| format!("{t:?} is {filled:?}, not a number yet"))
            }
        }
    }
}

/// The outcome of a check: whether it holds, and if not what is missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    pub missing: String,
}

impl Verdict {
    fn pass() -> Verdict {
        Verdict { passed: true, missing: String::new() }
    }

    fn fail(missing: impl Into<String>) -> Verdict {
        Verdict { passed: false, missing: missing.into() }
    }

    fn when(passed: bool, missing: impl FnOnce() -> String) -> Verdict {
        if passed { Verdict::pass() } else { Verdict::fail(missing()) }
    }
}

/// What a check is evaluated against: the lab, the moment its step began, the moment now,
/// and what timed checks remember between evaluations.
pub struct Context<'a> {
    pub lab: &'a Lab,
    pub start: &'a Moment,
    pub now: Moment,
    pub memory: &'a mut Memory,
}

/// For `holds_for` and `eventually`: since when each held, by its place in the check.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    since_ms: HashMap<String, i64>,
}

impl Check {
    /// The longest time the check needs to watch the cluster to decide, for one-shot runs
    /// such as `raftty lesson check` (a `holds_for` must be seen holding that long).
    pub fn settle_time(&self) -> Duration {
        match self {
            Check::All(cs) | Check::Any(cs) => cs.iter().map(Check::settle_time).max().unwrap_or_default(),
            Check::Not(c) | Check::Eventually { check: c, .. } => c.settle_time(),
            Check::HoldsFor { duration, check } => duration.0 + check.settle_time(),
            _ => Duration::ZERO,
        }
    }

    pub fn evaluate<'a>(&'a self, cx: &'a mut Context<'_>) -> BoxFuture<'a, Verdict> {
        self.evaluate_at(cx, "0".to_string())
    }

    fn evaluate_at<'a>(&'a self, cx: &'a mut Context<'_>, path: String) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            match self {
                Check::All(checks) => {
                    let mut missing = Vec::new();
                    for (i, c) in checks.iter().enumerate() {
                        let v = c.evaluate_at(cx, format!("{path}.{i}")).await;
                        if !v.passed {
                            missing.push(v.missing);
                        }
                    }
                    Verdict::when(missing.is_empty(), || missing.join("; "))
                }
                Check::Any(checks) => {
                    let mut missing = Vec::new();
                    for (i, c) in checks.iter().enumerate() {
                        let v = c.evaluate_at(cx, format!("{path}.{i}")).await;
                        if v.passed {
                            return Verdict::pass();
                        }
                        missing.push(v.missing);
                    }
                    Verdict::fail(format!("one of these: {}", missing.join(" | ")))
                }
                Check::Not(check) => {
                    let v = check.evaluate_at(cx, format!("{path}.0")).await;
                    Verdict::when(!v.passed, || format!("this must not be so: {}", check.describe()))
                }
                Check::Eventually { within, check } => {
                    if cx.memory.since_ms.contains_key(&path) {
                        return Verdict::pass();
                    }
                    let elapsed = cx.now.unix_ms - cx.start.unix_ms;
                    let v = check.evaluate_at(cx, format!("{path}.0")).await;
                    if v.passed && elapsed <= within.0.as_millis() as i64 {
                        cx.memory.since_ms.insert(path, cx.now.unix_ms);
                        return Verdict::pass();
                    }
                    if elapsed > within.0.as_millis() as i64 {
                        Verdict::fail(format!(
                            "{} did not happen within {} of the step starting (reset the step to try again)",
                            check.describe(),
                            humantime::format_duration(within.0)
                        ))
                    } else {
                        v
                    }
                }
                Check::HoldsFor { duration, check } => {
                    let v = check.evaluate_at(cx, format!("{path}.0")).await;
                    if !v.passed {
                        cx.memory.since_ms.remove(&path);
                        return v;
                    }
                    let since = *cx.memory.since_ms.entry(path).or_insert(cx.now.unix_ms);
                    let held = Duration::from_millis((cx.now.unix_ms - since).max(0) as u64);
                    Verdict::when(held >= duration.0, || {
                        format!(
                            "{} has held for {:.1} s of the {:.1} s needed",
                            check.describe(),
                            held.as_secs_f64(),
                            duration.0.as_secs_f64()
                        )
                    })
                }
                leaf => leaf.evaluate_leaf(cx).await,
            }
        })
    }

    async fn evaluate_leaf(&self, cx: &mut Context<'_>) -> Verdict {
        let (start, now) = (cx.start, &cx.now);
        match self {
            Check::LeaderChanged {} => match &now.leader {
                Some(l) if Some(l) != start.leader.as_ref() && now.term > start.term => Verdict::pass(),
                Some(l) => match now.member(l).map(|m| m.state.as_str()) {
                    Some("running") | None => {
                        Verdict::fail(format!("no new leader yet: {l} still leads, in term {}", now.term))
                    }
                    Some(state) => Verdict::fail(format!(
                        "no new leader yet: {l} is {state}, and the others have not elected anyone yet (term {})",
                        now.term
                    )),
                },
                None => Verdict::fail(format!("no leader at the moment (term {})", now.term)),
            },
            Check::TermIncreased { by } => {
                let by = by.unwrap_or(1);
                Verdict::when(now.term >= start.term + by, || {
                    format!(
                        "the term is {}; it must reach {} (it was {} when the step began)",
                        now.term,
                        start.term + by,
                        start.term
                    )
                })
            }
            Check::HasLeader {} => Verdict::when(now.leader.is_some(), || "no leader is elected yet".into()),
            Check::NoLeader {} => match &now.leader {
                Some(l) => Verdict::fail(format!("{l} still leads")),
                None => Verdict::pass(),
            },
            Check::Quorum { present } => Verdict::when(now.quorum == *present, || {
                if *present {
                    format!("no majority answers: only {} of {} members run", now.running(), now.members.len())
                } else {
                    format!("a majority still answers: {} of {} members run", now.running(), now.members.len())
                }
            }),
            Check::Member { name, state, role } => {
                let name = fill(name, start, now);
                if state.as_deref() == Some("removed") {
                    return Verdict::when(now.member(&name).is_none(), || {
                        format!("{name} is still a member of the cluster")
                    });
                }
                let Some(m) = now.member(&name) else { return Verdict::fail(format!("there is no member {name}")) };
                let state_ok = match state.as_deref() {
                    None => true,
                    Some("down") => m.state != "running",
                    Some("exited") => m.state == "exited" || m.state == "killed",
                    Some(s) => m.state == s,
                };
                let role_ok = role.as_deref().is_none_or(|r| m.role.as_deref() == Some(r));
                Verdict::when(state_ok && role_ok, || {
                    let want: Vec<&str> = [state.as_deref(), role.as_deref()].into_iter().flatten().collect();
                    format!(
                        "{name} must be {} but is {}{}",
                        want.join(" and "),
                        m.state,
                        m.role.as_deref().map(|r| format!(", {r}")).unwrap_or_default()
                    )
                })
            }
            Check::MemberCount { equals, at_least } => {
                let n = now.members.len();
                let ok = equals.is_none_or(|e| n == e) && at_least.is_none_or(|a| n >= a);
                Verdict::when(ok, || match (equals, at_least) {
                    (Some(e), _) => format!("the cluster has {n} members, not {e}"),
                    (_, Some(a)) => format!("the cluster has {n} members; it needs at least {a}"),
                    _ => String::new(),
                })
            }
            Check::Running { equals, at_least, at_most } => {
                let n = now.running();
                let ok =
                    equals.is_none_or(|e| n == e) && at_least.is_none_or(|a| n >= a) && at_most.is_none_or(|a| n <= a);
                Verdict::when(ok, || {
                    let want = match (equals, at_least, at_most) {
                        (Some(e), _, _) => format!("{e}"),
                        (_, Some(a), Some(b)) => format!("{a} to {b}"),
                        (_, Some(a), None) => format!("at least {a}"),
                        (_, None, Some(b)) => format!("at most {b}"),
                        _ => "any number".into(),
                    };
                    format!("{n} of {} members run; this step wants {want}", now.members.len())
                })
            }
            Check::LearnerPresent {} => {
                Verdict::when(now.members.iter().any(|m| m.role.as_deref() == Some("learner")), || {
                    "no member is a learner".into()
                })
            }
            Check::Key { key, value, absent, via, serializable, version } => {
                let via = via.as_deref().map(|v| fill(v, start, now));
                let seen = match observe::read(cx.lab, now, key, via.as_deref(), *serializable).await {
                    Err(e) => return Verdict::fail(format!("could not read {key}: {e:#}")),
                    Ok(found) => found.map(|kv| (String::from_utf8_lossy(&kv.value).into_owned(), kv.version)),
                };
                key_verdict(key, seen, value.as_deref(), *absent, *version)
            }
            Check::Revision { at_least, grown_by } => {
                let Some(rev) = now.revision else { return Verdict::fail("the revision cannot be read: no leader") };
                let floor = at_least.unwrap_or(0).max(start.revision.unwrap_or(0) + grown_by.unwrap_or(0));
                Verdict::when(rev >= floor, || format!("the revision is {rev}; it must reach {floor}"))
            }
            Check::WriteCommits { via, within } => {
                let via = via.as_deref().map(|v| fill(v, start, now));
                let wait = within.map(|d| d.0).unwrap_or(Duration::from_secs(2));
                let ok = observe::write_commits(cx.lab, now, via.as_deref(), wait).await;
                Verdict::when(ok, || {
                    format!("a write{} did not commit within {:.1} s", through(via.as_deref()), wait.as_secs_f64())
                })
            }
            Check::WriteStalls { via, wait } => {
                let via = via.as_deref().map(|v| fill(v, start, now));
                let wait = wait.map(|d| d.0).unwrap_or(Duration::from_secs(2));
                let ok = !observe::write_commits(cx.lab, now, via.as_deref(), wait).await;
                Verdict::when(ok, || format!("a write{} still commits", through(via.as_deref())))
            }
            Check::Alarm { present } => Verdict::when(now.alarms.is_empty() != *present, || {
                if *present {
                    "no alarm is raised".into()
                } else {
                    format!("an alarm is raised: {}", now.alarms.join(", "))
                }
            }),
            Check::CertificateRefused { cn } => {
                let events = observe::events_since(cx.lab, start.unix_ms).await;
                let seen = events
                    .iter()
                    .any(|e| e.kind == "client_refused" && cn.as_ref().is_none_or(|cn| e.fields.get("cn") == Some(cn)));
                Verdict::when(seen, || match cn {
                    Some(cn) => format!("no member has refused a certificate with CN {cn} since the step began"),
                    None => "no member has refused a client's certificate since the step began".into(),
                })
            }
            Check::PermissionDenied { user } => {
                let events = observe::events_since(cx.lab, start.unix_ms).await;
                let seen = events.iter().any(|e| {
                    e.kind == "request_refused"
                        && e.fields.get("reason").is_some_and(|r| r.contains("permission denied"))
                        && user.as_ref().is_none_or(|u| e.fields.get("user") == Some(u))
                });
                Verdict::when(seen, || match user {
                    Some(u) => format!("no request of {u} has been refused since the step began"),
                    None => "no request has been refused since the step began".into(),
                })
            }
            Check::WatchSaw { key, prefix, event, value } => {
                let (from, to) = watch_range(key.as_deref(), prefix.as_deref());
                let since = start.revision.unwrap_or(0) + 1;
                match observe::watch_history(cx.lab, now, &from, &to, since).await {
                    Err(e) => Verdict::fail(format!("no watch could be opened: {e:#}")),
                    Ok(events) => {
                        let want = WatchWant { event: event.as_deref(), value: value.as_deref() };
                        Verdict::when(events.iter().any(|e| want.matches(e)), || {
                            format!(
                                "a watch of {} from revision {since} has seen no {} yet",
                                watched(key.as_deref(), prefix.as_deref()),
                                want.describe()
                            )
                        })
                    }
                }
            }
            Check::Lease { alive, key: Some(key) } => {
                let held = match observe::read(cx.lab, now, key, None, false).await {
                    Err(e) => return Verdict::fail(format!("could not read {key}: {e:#}")),
                    Ok(None) => None,
                    Ok(Some(kv)) if kv.lease == 0 => Some(None),
                    Ok(Some(kv)) => match observe::lease_ttl(cx.lab, now, kv.lease).await {
                        Err(e) => return Verdict::fail(format!("{e:#}")),
                        Ok(ttl) => Some(ttl.map(|t| (kv.lease, t))),
                    },
                };
                lease_on_key_verdict(key, *alive, held)
            }
            Check::Lease { alive, key: None } => lease_verdict(*alive, start, now),
            Check::DbShrank { via } => {
                let via = via.as_deref().map(|v| fill(v, start, now));
                db_shrank_verdict(via.as_deref(), start, now)
            }
            Check::HashKvEqual {} => match observe::hashes_agree(cx.lab).await {
                Ok(Ok(n)) if n >= now.running() && n > 0 => Verdict::pass(),
                Ok(Ok(n)) => {
                    Verdict::fail(format!("only {n} of the {} running members could be compared", now.running()))
                }
                Ok(Err(why)) => Verdict::fail(format!("the members do not hold the same data {why}")),
                Err(e) => Verdict::fail(format!("the members' hashes cannot be compared: {e:#}")),
            },
            Check::SnapshotFile { path, revision_at_least, key } => {
                let floor = match revision_at_least.as_ref().map(|n| n.value(start, now)).transpose() {
                    Ok(f) => f,
                    Err(e) => return Verdict::fail(e),
                };
                let path = resolve(&fill(path, start, now), now);
                snapshot_verdict(&path, floor, key.as_deref())
            }
            Check::Compacted { at_least } => {
                let floor = match at_least.as_ref().map(|n| n.value(start, now)).transpose() {
                    Ok(f) => f.unwrap_or(1),
                    Err(e) => return Verdict::fail(e),
                };
                match observe::compact_revision(cx.lab, now).await {
                    Err(e) => Verdict::fail(format!("the compaction floor cannot be read: {e:#}")),
                    Ok(0) => Verdict::fail("the store was never compacted: every revision is still there"),
                    Ok(c) => Verdict::when(c >= floor, || {
                        format!("the history starts at revision {c}; it must be compacted up to at least {floor}")
                    }),
                }
            }
            Check::BackupCovers { path, revision } => {
                let target = match revision.value(start, now) {
                    Ok(r) => r,
                    Err(e) => return Verdict::fail(e),
                };
                let dir = resolve(&fill(path, start, now), now);
                backup_verdict(&dir, target)
            }
            Check::Auth { enabled } => match observe::auth_enabled(cx.lab, now).await {
                Err(e) => Verdict::fail(format!("cannot tell whether auth is on: {e:#}")),
                Ok(on) => Verdict::when(on == *enabled, || {
                    if *enabled { "auth is not enabled yet".into() } else { "auth is still enabled".into() }
                }),
            },
            Check::StepMode { on, auto_heartbeats } => {
                let step = crate::lab::faults::LabFaults::load(&cx.lab.dir).ok().and_then(|f| f.step);
                match (step, on) {
                    (None, true) => Verdict::fail("step mode is off (`raftty step on`)"),
                    (Some(_), false) => Verdict::fail("step mode is still on (`raftty step off`)"),
                    (Some(s), true) if auto_heartbeats.is_some_and(|want| want != s.auto_heartbeats) => {
                        Verdict::fail(if s.auto_heartbeats {
                            "heartbeats flow by themselves; they must wait too (`raftty step on`)"
                        } else {
                            "heartbeats wait; they must flow by themselves (`raftty step on --auto-heartbeats`)"
                        })
                    }
                    _ => Verdict::pass(),
                }
            }
            Check::Held { kind, from, to, entries, at_least, at_most } => {
                let (from, to) = (from.as_ref().map(|f| fill(f, start, now)), to.as_ref().map(|t| fill(t, start, now)));
                let held = match crate::lab::step::held(cx.lab).await {
                    Ok(h) => h,
                    Err(e) => return Verdict::fail(format!("cannot see the held messages: {e:#}")),
                };
                let count = held
                    .iter()
                    .filter(|m| kind.as_ref().is_none_or(|k| *k == m.kind))
                    .filter(|m| from.as_ref().is_none_or(|f| *f == m.from))
                    .filter(|m| to.as_ref().is_none_or(|t| *t == m.to))
                    .filter(|m| !entries || m.last_index > 0)
                    .count();
                let what = held_words(kind.as_deref(), from.as_deref(), to.as_deref(), *entries);
                match (at_least, at_most) {
                    (_, Some(most)) if count > *most => Verdict::fail(format!(
                        "{count} {what} still wait{}",
                        if *most == 0 { "" } else { " (too many)" }
                    )),
                    (Some(least), _) if count < *least => {
                        Verdict::fail(format!("{count} {what} wait, not {least} yet"))
                    }
                    (None, None) if count == 0 => Verdict::fail(format!("no {what} waits")),
                    _ => Verdict::pass(),
                }
            }
            Check::UserRole { user, role } => match observe::user_roles(cx.lab, now, user).await {
                Err(e) => Verdict::fail(format!("cannot read user {user}: {e:#}")),
                Ok(None) => Verdict::fail(format!("there is no user {user}")),
                Ok(Some(roles)) => Verdict::when(roles.contains(role), || match roles.len() {
                    0 => format!("{user} has no role; it needs {role}"),
                    _ => format!("{user} has the roles {}, not {role}", roles.join(", ")),
                }),
            },
            Check::All(_) | Check::Any(_) | Check::Not(_) | Check::Eventually { .. } | Check::HoldsFor { .. } => {
                unreachable!("combinators are evaluated by evaluate_at")
            }
        }
    }

    /// The check in a few words, for "this must not be so: ..." and timed checks.
    pub fn describe(&self) -> String {
        match self {
            Check::All(cs) => cs.iter().map(Check::describe).collect::<Vec<_>>().join(" and "),
            Check::Any(cs) => cs.iter().map(Check::describe).collect::<Vec<_>>().join(" or "),
            Check::Not(c) => format!("not ({})", c.describe()),
            Check::Eventually { check, .. } | Check::HoldsFor { check, .. } => check.describe(),
            Check::LeaderChanged {} => "a new leader".into(),
            Check::TermIncreased { .. } => "a higher term".into(),
            Check::HasLeader {} => "a leader".into(),
            Check::NoLeader {} => "no leader".into(),
            Check::Quorum { present: true } => "a quorum".into(),
            Check::Quorum { present: false } => "no quorum".into(),
            Check::Member { name, state, role } => {
                let want: Vec<&str> = [state.as_deref(), role.as_deref()].into_iter().flatten().collect();
                format!("{name} {}", want.join(" "))
            }
            Check::MemberCount { equals: Some(n), .. } => format!("{n} members"),
            Check::MemberCount { at_least, .. } => format!("at least {} members", at_least.unwrap_or(0)),
            Check::Running { .. } => "the members running".into(),
            Check::LearnerPresent {} => "a learner".into(),
            Check::Key { key, absent: true, .. } => format!("{key} absent"),
            Check::Key { key, value: Some(v), .. } => format!("{key} = {v:?}"),
            Check::Key { key, .. } => format!("{key} present"),
            Check::Revision { .. } => "a higher revision".into(),
            Check::WriteCommits { .. } => "writes commit".into(),
            Check::WriteStalls { .. } => "writes stall".into(),
            Check::Alarm { present: true } => "an alarm".into(),
            Check::Alarm { present: false } => "no alarm".into(),
            Check::CertificateRefused { .. } => "a refused certificate".into(),
            Check::PermissionDenied { .. } => "a refused request".into(),
            Check::WatchSaw { key, prefix, event, value } => format!(
                "a {} seen by a watch of {}",
                WatchWant { event: event.as_deref(), value: value.as_deref() }.describe(),
                watched(key.as_deref(), prefix.as_deref())
            ),
            Check::Lease { alive: true, key: Some(k) } => format!("{k} on a live lease"),
            Check::Lease { alive: true, key: None } => "a live lease".into(),
            Check::Lease { alive: false, key: Some(k) } => format!("{k} on no live lease"),
            Check::Lease { alive: false, key: None } => "a lease expired".into(),
            Check::DbShrank { .. } => "a smaller database file".into(),
            Check::HashKvEqual {} => "every member holding the same data".into(),
            Check::SnapshotFile { path, .. } => format!("a snapshot at {path}"),
            Check::Compacted { .. } => "a compacted history".into(),
            Check::BackupCovers { path, .. } => format!("a continuous backup in {path}"),
            Check::Auth { enabled: true } => "auth enabled".into(),
            Check::Auth { enabled: false } => "auth disabled".into(),
            Check::UserRole { user, role } => format!("{user} with the role {role}"),
            Check::StepMode { on: true, .. } => "step mode on".into(),
            Check::StepMode { on: false, .. } => "step mode off".into(),
            Check::Held { kind, from, to, entries, .. } => {
                format!("{} held", held_words(kind.as_deref(), from.as_deref(), to.as_deref(), *entries))
            }
        }
    }
}

/// Held messages as the learner would name them: `append with entries from n1 to n2`.
fn held_words(kind: Option<&str>, from: Option<&str>, to: Option<&str>, entries: bool) -> String {
    let mut words = kind.unwrap_or("message").to_string();
    if entries {
        words.push_str(" with entries");
    }
    if let Some(f) = from {
        words.push_str(&format!(" from {f}"));
    }
    if let Some(t) = to {
        words.push_str(&format!(" to {t}"));
    }
    words
}

fn key_verdict(
    key: &str,
    seen: Option<(String, i64)>,
    value: Option<&str>,
    absent: bool,
    version: Option<i64>,
) -> Verdict {
    match seen {
        Some((found, _)) if absent => Verdict::fail(format!("{key} still exists ({found:?})")),
        None if absent => Verdict::pass(),
        None => Verdict::fail(format!("{key} does not exist")),
        Some((found, _)) if value.is_some_and(|v| v != found) => {
            Verdict::fail(format!("{key} is {found:?}, not {:?}", value.unwrap_or_default()))
        }
        Some((_, v)) if version.is_some_and(|want| want != v) => {
            Verdict::fail(format!("{key} is at version {v}, not {}", version.unwrap_or_default()))
        }
        Some(_) => Verdict::pass(),
    }
}

/// The key range a watch of `key` or `prefix` covers, as etcd names ranges (a prefix ends
/// where the next prefix begins; "\0" to "\0" is everything).
fn watch_range(key: Option<&str>, prefix: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    match (key, prefix) {
        (Some(k), _) => (k.as_bytes().to_vec(), Vec::new()),
        (None, Some(p)) => (p.as_bytes().to_vec(), crate::client::prefix_end(p.as_bytes()).to_vec()),
        (None, None) => (vec![0], vec![0]),
    }
}

fn watched(key: Option<&str>, prefix: Option<&str>) -> String {
    match (key, prefix) {
        (Some(k), _) => k.to_string(),
        (None, Some(p)) => format!("the prefix {p}"),
        (None, None) => "every key".into(),
    }
}

/// Which watch events a `watch_saw` wants.
struct WatchWant<'a> {
    event: Option<&'a str>,
    value: Option<&'a str>,
}

impl WatchWant<'_> {
    fn matches(&self, e: &crate::proto::mvccpb::Event) -> bool {
        let delete = e.r#type == crate::proto::mvccpb::event::EventType::Delete as i32;
        let kind_ok = match self.event {
            Some("delete") => delete,
            Some(_) => !delete,
            None => true,
        };
        let value_ok = self.value.is_none_or(|v| e.kv.as_ref().is_some_and(|kv| kv.value == v.as_bytes()));
        kind_ok && value_ok
    }

    fn describe(&self) -> String {
        let what = match self.event {
            Some("delete") => "delete",
            Some(_) => "put",
            None => "change",
        };
        match self.value {
            Some(v) => format!("{what} of the value {v:?}"),
            None => what.to_string(),
        }
    }
}

/// `held`: None when the key is gone, Some(None) when it is on no live lease, else the
/// lease and its seconds left.
fn lease_on_key_verdict(key: &str, alive: bool, held: Option<Option<(i64, i64)>>) -> Verdict {
    match (alive, held) {
        (true, Some(Some(_))) | (false, None | Some(None)) => Verdict::pass(),
        (true, None) => Verdict::fail(format!("{key} does not exist (a lease that expires deletes its keys)")),
        (true, Some(None)) => Verdict::fail(format!("{key} is attached to no live lease")),
        (false, Some(Some((id, ttl)))) => {
            Verdict::fail(format!("{key} is still held by lease {id:x}, alive for {ttl} s more"))
        }
    }
}

fn lease_verdict(alive: bool, start: &Moment, now: &Moment) -> Verdict {
    if alive {
        return Verdict::when(!now.leases.is_empty(), || "no lease is alive".into());
    }
    let gone: Vec<&i64> = start.leases.iter().filter(|id| !now.leases.contains(id)).collect();
    Verdict::when(!gone.is_empty(), || match start.leases.len() {
        0 => "no lease was alive when the step began, so none can expire".into(),
        n => format!("the {n} lease(s) alive when the step began are all still alive"),
    })
}

fn db_shrank_verdict(via: Option<&str>, start: &Moment, now: &Moment) -> Verdict {
    let sizes = now.members.iter().filter(|m| m.state == "running" && via.is_none_or(|v| m.name == v)).map(|m| {
        let before = start.member(&m.name).and_then(|s| s.db_size);
        (m.name.as_str(), before, m.db_size)
    });
    let mut missing = Vec::new();
    let mut compared = 0;
    for (name, before, after) in sizes {
        let (Some(before), Some(after)) = (before, after) else { continue };
        compared += 1;
        if after >= before {
            missing.push(format!("{name}'s database is {after} bytes (it was {before} when the step began)"));
        }
    }
    if compared == 0 {
        return Verdict::fail(match via {
            Some(v) => format!("the size of {v}'s database cannot be read"),
            None => "no member's database size can be read".into(),
        });
    }
    Verdict::when(missing.is_empty(), || missing.join("; "))
}

/// A snapshot path as a check names it: relative ones are in the lab's backup folder.
fn resolve(path: &str, now: &Moment) -> std::path::PathBuf {
    let path = std::path::Path::new(path);
    if path.is_absolute() || now.backups.is_empty() {
        path.to_path_buf()
    } else {
        std::path::Path::new(&now.backups).join(path)
    }
}

fn snapshot_verdict(path: &std::path::Path, floor: Option<i64>, key: Option<&str>) -> Verdict {
    let shown = path.display();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Verdict::fail(format!("there is no snapshot at {shown}"));
        }
        Err(e) => return Verdict::fail(format!("{shown} cannot be read: {e}")),
    };
    let checked = crate::backup::snapshot_file::db_of(&bytes, false)
        .and_then(|_| crate::backup::snapshot_file::status(&bytes))
        .map_err(|e| format!("{shown} is not a whole snapshot: {e:#}"));
    let status = match checked {
        Ok(s) => s,
        Err(e) => return Verdict::fail(e),
    };
    if let Some(floor) = floor.filter(|f| status.revision < *f) {
        return Verdict::fail(format!(
            "the snapshot {shown} is at revision {}; it must hold revision {floor}",
            status.revision
        ));
    }
    let Some(key) = key else { return Verdict::pass() };
    let backend = crate::backup::snapshot_file::db_of(&bytes, false)
        .and_then(crate::backup::etcd_db::Backend::from_bolt)
        .map_err(|e| format!("{shown} cannot be read: {e:#}"));
    match backend {
        Err(e) => Verdict::fail(e),
        Ok(b) => {
            let alive = b.changes.iter().rev().find(|c| c.kv.key == key.as_bytes()).is_some_and(|c| !c.tombstone);
            Verdict::when(alive, || format!("the snapshot {shown} does not hold {key}"))
        }
    }
}

fn backup_verdict(dir: &std::path::Path, target: i64) -> Verdict {
    let shown = dir.display();
    if !crate::backup::continuous::is_backup_dir(dir) {
        return Verdict::fail(format!("there is no continuous backup in {shown} yet (no full snapshot there)"));
    }
    match crate::backup::continuous::span(dir) {
        Err(e) => Verdict::fail(format!("the backup in {shown} cannot be read: {e:#}")),
        Ok((first, last)) => Verdict::when((first..=last).contains(&target), || {
            if target > last {
                format!("the backup in {shown} has recorded up to revision {last}; it must reach {target}")
            } else {
                format!("the backup in {shown} starts at revision {first}, after {target}")
            }
        }),
    }
}

fn through(via: Option<&str>) -> String {
    via.map(|v| format!(" through {v}")).unwrap_or_default()
}

/// Fills the placeholders of a lesson's text: `{start.X}` from the step's start, `{X}` from
/// now, where X is `leader`, `term`, `revision`, `members` (running), `follower`, `down`
/// (a member that is not running), `seconds` (since the step began, only `{seconds}`).
pub fn fill(text: &str, start: &Moment, now: &Moment) -> String {
    let mut out = text.to_string();
    for (prefix, m) in [("start.", start), ("", now)] {
        let values = [
            ("leader", m.leader.clone().unwrap_or_else(|| "nobody".into())),
            ("term", m.term.to_string()),
            ("revision", m.revision.map(|r| r.to_string()).unwrap_or_else(|| "?".into())),
            ("next_revision", m.revision.map(|r| (r + 1).to_string()).unwrap_or_else(|| "?".into())),
            ("members", m.running().to_string()),
            ("followers", m.followers()),
            ("follower", m.follower().unwrap_or("no follower").to_string()),
            ("other_follower", m.other_follower().unwrap_or("no other follower").to_string()),
            ("down", m.down().unwrap_or("nobody").to_string()),
            ("running", m.running_member().unwrap_or("nobody").to_string()),
            ("learner", m.learner().unwrap_or("no learner").to_string()),
            ("outsider", m.outsider().unwrap_or("nobody").to_string()),
            ("newest", m.newest().unwrap_or("nobody").to_string()),
            ("lab_dir", m.lab_dir.clone()),
            ("backups", m.backups.clone()),
        ];
        for (name, value) in values {
            out = out.replace(&format!("{{{prefix}{name}}}"), &value);
        }
    }
    let seconds = (now.unix_ms - start.unix_ms).max(0) as f64 / 1000.0;
    out.replace("{seconds}", &format!("{seconds:.1}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::course::observe::MemberMoment;

    fn moment(at_ms: i64, leader: Option<&str>, term: u64, running: &[&str]) -> Moment {
        let members = ["n1", "n2", "n3"]
            .iter()
            .map(|n| MemberMoment {
                name: n.to_string(),
                state: if running.contains(n) { "running" } else { "killed" }.into(),
                role: running.contains(n).then(|| if Some(*n) == leader { "leader" } else { "follower" }.to_string()),
                term: Some(term),
                db_size: None,
                follows: running.contains(n).then(|| leader.map(str::to_string)).flatten(),
            })
            .collect();
        Moment {
            unix_ms: at_ms,
            leader: leader.map(str::to_string),
            term,
            revision: Some(5),
            quorum: running.len() >= 2,
            members,
            alarms: vec![],
            ..Default::default()
        }
    }

    fn check(text: &str) -> Check {
        #[derive(Deserialize)]
        struct One {
            check: Check,
        }
        toml::from_str::<One>(&format!("check = {text}")).unwrap_or_else(|e| panic!("{text}: {e}")).check
    }

    /// Evaluates `c` at each moment in turn, with one memory, as the app does every second.
    fn run(c: &Check, start: &Moment, moments: &[Moment]) -> Vec<Verdict> {
        let home = tempfile::tempdir().unwrap();
        let lab = Lab::create(home.path(), "t", 3, crate::lab::Tempo::ETCD, Default::default()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut memory = Memory::default();
        moments
            .iter()
            .map(|now| {
                let mut cx = Context { lab: &lab, start, now: now.clone(), memory: &mut memory };
                runtime.block_on(c.evaluate(&mut cx))
            })
            .collect()
    }

    #[test]
    fn a_new_leader_means_new_since_the_step_began_and_a_stopped_follower_is_not_one() {
        let start = moment(0, Some("n1"), 2, &["n1", "n2", "n3"]);
        let c = check("{ leader_changed = {} }");
        let follower_stopped = moment(1000, Some("n1"), 2, &["n1", "n2"]);
        let leader_killed = moment(1500, Some("n1"), 2, &["n2", "n3"]);
        let elected = moment(3000, Some("n3"), 3, &["n2", "n3"]);
        let verdicts = run(&c, &start, &[follower_stopped, leader_killed, elected.clone()]);
        assert_eq!(verdicts[0].missing, "no new leader yet: n1 still leads, in term 2");
        assert!(verdicts[1].missing.contains("n1 is killed, and the others have not elected anyone yet"));
        assert!(verdicts[2].passed);
        // Measured against the step's own start: the same leader is not new to a later step.
        assert!(!run(&c, &elected, std::slice::from_ref(&elected))[0].passed);
    }

    #[test]
    fn holds_for_needs_an_unbroken_run_and_eventually_a_deadline() {
        let start = moment(0, Some("n1"), 2, &["n1", "n2", "n3"]);
        let up = |t| moment(t, Some("n1"), 2, &["n1", "n2", "n3"]);
        let down = |t| moment(t, None, 2, &["n1"]);
        let held = check(r#"{ holds_for = { duration = "2s", check = { quorum = { present = false } } } }"#);
        let v = run(&held, &start, &[down(0), down(1500), up(1600), down(2000), down(3000), down(4100)]);
        let passed: Vec<bool> = v.iter().map(|v| v.passed).collect();
        assert_eq!(passed, [false, false, false, false, false, true], "{v:?}");
        assert!(v[4].missing.contains("has held for 1.0 s of the 2.0 s needed"), "{}", v[4].missing);

        let soon = check(r#"{ eventually = { within = "5s", check = { no_leader = {} } } }"#);
        let v = run(&soon, &start, &[up(1000), down(2000), up(3000)]);
        assert_eq!(v.iter().map(|v| v.passed).collect::<Vec<_>>(), [false, true, true], "once seen in time, it counts");
        let late = run(&soon, &start, &[up(1000), down(6000)]);
        assert!(!late[1].passed && late[1].missing.contains("did not happen within 5s"), "{:?}", late[1]);
    }

    #[test]
    fn combinators_and_member_checks_say_what_is_missing() {
        let start = moment(0, Some("n1"), 2, &["n1", "n2", "n3"]);
        let now = moment(1000, Some("n2"), 3, &["n2", "n3"]);
        let c = check(
            r#"{ all = [{ member = { name = "{start.leader}", state = "running" } }, { running = { equals = 2 } },
                        { not = { has_leader = {} } }] }"#,
        );
        let v = &run(&c, &start, std::slice::from_ref(&now))[0];
        assert_eq!(v.missing, "n1 must be running but is killed; this must not be so: a leader");
        let any = check("{ any = [{ no_leader = {} }, { term_increased = { by = 2 } }] }");
        let v = &run(&any, &start, std::slice::from_ref(&now))[0];
        assert!(v.missing.starts_with("one of these: n2 still leads | the term is 3; it must reach 4"), "{v:?}");
        assert_eq!(
            fill("{start.leader} to {leader} in {seconds} s; {down} is down", &start, &now),
            "n1 to n2 in 1.0 s; n1 is down"
        );
    }

    fn kv(key: &str, value: &str, main: i64, tombstone: bool) -> crate::backup::etcd_db::Change {
        let kv = crate::proto::mvccpb::KeyValue {
            key: key.as_bytes().to_vec().into(),
            value: value.as_bytes().to_vec().into(),
            create_revision: main,
            mod_revision: main,
            version: 1,
            ..Default::default()
        };
        crate::backup::etcd_db::Change { main, sub: 0, tombstone, kv }
    }

    /// A snapshot file as `etcdctl snapshot save` writes it: the bbolt file, then its SHA-256.
    fn snapshot_bytes(changes: Vec<crate::backup::etcd_db::Change>) -> Vec<u8> {
        let backend = crate::backup::etcd_db::Backend { changes, ..Default::default() };
        let mut file = backend.to_bolt();
        let sum = crate::backup::snapshot_file::sha256(&file);
        file.extend_from_slice(&sum);
        file
    }

    #[test]
    fn every_new_check_reads_from_toml_with_placeholders_for_numbers() {
        for text in [
            r#"{ watch_saw = { prefix = "/orders/", event = "delete" } }"#,
            r#"{ watch_saw = { key = "/a", value = "v" } }"#,
            r#"{ lease = { alive = true, key = "/locks/job" } }"#,
            r#"{ lease = { alive = false } }"#,
            r#"{ db_shrank = { via = "{leader}" } }"#,
            r#"{ hash_kv_equal = {} }"#,
            r#"{ snapshot_file = { path = "full.db", revision_at_least = "{start.revision}", key = "/k" } }"#,
            r#"{ compacted = { at_least = 7 } }"#,
            r#"{ backup_covers = { path = "continuous", revision = "{revision}" } }"#,
            r#"{ auth = { enabled = true } }"#,
            r#"{ user_role = { user = "alice", role = "reader" } }"#,
            r#"{ key = { key = "/k", version = 2 } }"#,
            r#"{ member = { name = "n3", state = "removed" } }"#,
        ] {
            check(text);
        }
        let start = moment(0, Some("n1"), 2, &["n1", "n2", "n3"]);
        let mut now = start.clone();
        now.revision = Some(12);
        assert_eq!(Num::Text("{revision}".into()).value(&start, &now), Ok(12));
        assert_eq!(Num::Int(3).value(&start, &now), Ok(3));
        now.revision = None;
        assert!(Num::Text("{revision}".into()).value(&start, &now).unwrap_err().contains("not a number yet"));
    }

    #[test]
    fn a_watch_range_covers_a_key_a_prefix_or_everything_and_events_match_by_kind_and_value() {
        assert_eq!(watch_range(Some("/a"), None), (b"/a".to_vec(), vec![]));
        assert_eq!(watch_range(None, Some("/orders/")), (b"/orders/".to_vec(), b"/orders0".to_vec()));
        assert_eq!(watch_range(None, None), (vec![0], vec![0]));
        use crate::proto::mvccpb::Event;
        use crate::proto::mvccpb::event::EventType;
        let put = Event { r#type: EventType::Put as i32, kv: Some(kv("/a", "shipped", 3, false).kv), prev_kv: None };
        let del = Event { r#type: EventType::Delete as i32, kv: Some(kv("/a", "", 4, true).kv), prev_kv: None };
        let want = |event, value| WatchWant { event, value };
        assert!(want(Some("put"), Some("shipped")).matches(&put));
        assert!(!want(Some("put"), Some("new")).matches(&put), "another value is not the change asked for");
        assert!(!want(Some("delete"), None).matches(&put));
        assert!(want(Some("delete"), None).matches(&del) && want(None, None).matches(&del));
        assert_eq!(want(Some("put"), Some("v")).describe(), "put of the value \"v\"");
    }

    #[test]
    fn a_key_check_can_ask_for_its_version() {
        let seen = |v: &str, version| Some((v.to_string(), version));
        assert!(key_verdict("/k", seen("x", 2), Some("x"), false, Some(2)).passed);
        assert_eq!(key_verdict("/k", seen("x", 3), Some("x"), false, Some(2)).missing, "/k is at version 3, not 2");
        assert_eq!(key_verdict("/k", seen("y", 2), Some("x"), false, None).missing, "/k is \"y\", not \"x\"");
        assert_eq!(key_verdict("/k", None, None, false, None).missing, "/k does not exist");
        assert!(key_verdict("/k", None, None, true, None).passed);
    }

    #[test]
    fn leases_alive_or_gone_are_judged_against_the_step_start() {
        let mut start = moment(0, Some("n1"), 2, &["n1", "n2", "n3"]);
        start.leases = vec![7, 9];
        let mut now = start.clone();
        assert!(lease_verdict(true, &start, &now).passed);
        assert_eq!(
            lease_verdict(false, &start, &now).missing,
            "the 2 lease(s) alive when the step began are all still alive"
        );
        now.leases = vec![9, 11];
        assert!(lease_verdict(false, &start, &now).passed, "lease 7 expired, whatever else was granted since");
        now.leases.clear();
        assert_eq!(lease_verdict(true, &start, &now).missing, "no lease is alive");

        assert!(lease_on_key_verdict("/l", true, Some(Some((7, 20)))).passed);
        let deleted_by_hand = lease_on_key_verdict("/l", false, Some(Some((7, 20))));
        assert_eq!(deleted_by_hand.missing, "/l is still held by lease 7, alive for 20 s more");
        assert!(lease_on_key_verdict("/l", false, None).passed);
        assert!(lease_on_key_verdict("/l", true, None).missing.contains("does not exist"));
        assert_eq!(lease_on_key_verdict("/l", true, Some(None)).missing, "/l is attached to no live lease");
    }

    #[test]
    fn a_database_shrank_only_if_every_running_member_is_smaller_than_at_the_start() {
        let sized = |sizes: [u64; 3]| {
            let mut m = moment(0, Some("n1"), 2, &["n1", "n2", "n3"]);
            for (member, size) in m.members.iter_mut().zip(sizes) {
                member.db_size = Some(size);
            }
            m
        };
        let start = sized([4000, 4000, 4000]);
        assert!(db_shrank_verdict(None, &start, &sized([1000, 1000, 1000])).passed);
        let one_left = db_shrank_verdict(None, &start, &sized([1000, 1000, 4100]));
        assert_eq!(one_left.missing, "n3's database is 4100 bytes (it was 4000 when the step began)");
        assert!(db_shrank_verdict(Some("n1"), &start, &sized([1000, 4000, 4000])).passed, "one member asked for");
        let unknown = moment(0, Some("n1"), 2, &["n1", "n2", "n3"]);
        assert_eq!(db_shrank_verdict(None, &unknown, &unknown).missing, "no member's database size can be read");
    }

    #[test]
    fn a_snapshot_file_must_be_whole_recent_enough_and_hold_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.db");
        assert!(snapshot_verdict(&path, None, None).missing.starts_with("there is no snapshot at"));
        let file = snapshot_bytes(vec![
            kv("/app/config", "v1", 2, false),
            kv("/gone", "x", 3, false),
            kv("/gone", "", 4, true),
        ]);
        std::fs::write(&path, &file).unwrap();
        assert!(snapshot_verdict(&path, Some(4), Some("/app/config")).passed);
        assert!(snapshot_verdict(&path, Some(5), None).missing.contains("is at revision 4; it must hold revision 5"));
        assert!(snapshot_verdict(&path, None, Some("/gone")).missing.contains("does not hold /gone"), "a deleted key");
        std::fs::write(&path, &file[..file.len() - 100]).unwrap();
        assert!(snapshot_verdict(&path, None, None).missing.contains("is not a whole snapshot"), "a save cut short");

        let mut now = moment(0, Some("n1"), 2, &["n1"]);
        now.backups = "/b".into();
        assert_eq!(resolve("full.db", &now), std::path::PathBuf::from("/b/full.db"));
        assert_eq!(resolve("/elsewhere/x.db", &now), std::path::PathBuf::from("/elsewhere/x.db"));
    }

    #[test]
    fn a_continuous_backup_covers_the_revisions_from_its_full_snapshot_on() {
        let dir = tempfile::tempdir().unwrap();
        assert!(backup_verdict(dir.path(), 3).missing.contains("no continuous backup"));
        let file = snapshot_bytes(vec![kv("/a", "1", 2, false), kv("/b", "2", 3, false)]);
        std::fs::write(dir.path().join("full-3.db"), file).unwrap();
        assert!(backup_verdict(dir.path(), 3).passed);
        assert!(backup_verdict(dir.path(), 2).passed, "the full snapshot's history reaches back");
        let ahead = backup_verdict(dir.path(), 9);
        assert!(ahead.missing.contains("has recorded up to revision 3; it must reach 9"), "{ahead:?}");
    }

    #[test]
    fn the_leader_is_the_one_a_majority_of_voters_follows_and_removed_members_are_gone() {
        let vote = |name: &str, leader: Option<&str>, voter| (name.to_string(), leader.map(str::to_string), voter);
        // n1 is cut off and still names itself; n2 and n3 follow n2.
        let cut = [vote("n1", Some("n1"), true), vote("n2", Some("n2"), true), vote("n3", Some("n2"), true)];
        assert_eq!(observe::majority_leader(&cut).as_deref(), Some("n2"));
        let split = [
            vote("n1", Some("n1"), true),
            vote("n2", Some("n1"), true),
            vote("n3", Some("n3"), true),
            vote("n4", Some("n3"), true),
        ];
        assert_eq!(observe::majority_leader(&split), None, "two of four is no majority");
        let with_learner = [vote("n1", Some("n1"), true), vote("n2", Some("n1"), false)];
        assert_eq!(observe::majority_leader(&with_learner).as_deref(), Some("n1"), "a learner does not count");
        let claimed = [vote("n1", Some("n2"), true), vote("n3", Some("n2"), true)];
        assert_eq!(observe::majority_leader(&claimed), None, "a leader must say so itself");

        let start = moment(0, Some("n1"), 2, &["n1", "n2", "n3"]);
        let mut now = start.clone();
        now.members.retain(|m| m.name != "n3");
        let removed = check(r#"{ member = { name = "n3", state = "removed" } }"#);
        assert!(!run(&removed, &start, std::slice::from_ref(&start))[0].passed);
        assert!(run(&removed, &start, &[now])[0].passed);
    }

    #[test]
    fn placeholders_name_followers_outsiders_learners_and_the_lab_folders() {
        let mut now = moment(0, Some("n1"), 2, &["n1", "n2", "n3"]);
        now.members[2].follows = Some("n3".into());
        now.members[1].follows = Some("n1".into());
        now.members[2].role = Some("candidate".into());
        now.lab_dir = "/home/labs/x".into();
        now.backups = "/home/backups/x".into();
        let text = "{followers} {outsider} {learner} {newest} {running} {lab_dir} {backups} {next_revision}";
        assert_eq!(fill(text, &now, &now), "n2 n3 no learner n3 n1 /home/labs/x /home/backups/x 6");
    }
}
