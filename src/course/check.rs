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
    /// down = any but running) and/or has `role` (leader, follower, candidate, learner).
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
            Check::Key { key, value, absent, via, serializable } => {
                let via = via.as_deref().map(|v| fill(v, start, now));
                match observe::read(cx.lab, now, key, via.as_deref(), *serializable).await {
                    Err(e) => Verdict::fail(format!("could not read {key}: {e:#}")),
                    Ok(found) if *absent => Verdict::when(found.is_none(), || {
                        format!("{key} still exists ({:?})", found.unwrap_or_default())
                    }),
                    Ok(found) => match (found, value) {
                        (Some(f), Some(v)) if &f == v => Verdict::pass(),
                        (Some(_), None) => Verdict::pass(),
                        (Some(f), Some(v)) => Verdict::fail(format!("{key} is {f:?}, not {v:?}")),
                        (None, _) => Verdict::fail(format!("{key} does not exist")),
                    },
                }
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
        }
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
            ("members", m.running().to_string()),
            ("follower", m.follower().unwrap_or("no follower").to_string()),
            ("down", m.down().unwrap_or("nobody").to_string()),
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
}
