//! Checking what watchers were told against the committed history, for etcd's six watch
//! guarantees:
//!
//! - ordered: events arrive by revision, and within a revision in the order they were made;
//! - unique: no event twice;
//! - reliable: no event of the watched keys missing, from the start revision on;
//! - atomic: all the events of one revision that a watcher wants come in one response
//!   (fragments of one response count as one);
//! - resumable: a watch reopened at the revision after the last one it covered continues
//!   as if it had never been interrupted;
//! - bookmarkable: a progress notification at R comes only after every event up to R.
//!
//! Every event is also compared with the history's: same key-value, and the previous
//! key-value exactly when the watcher asked for it.
//!
//! The history itself ([`CommittedHistory`]) comes from the cluster (a watch of everything
//! from revision 1 with previous values, say) and should be checked independently: its
//! events must agree with their own `prev_kv`s ([`CommittedHistory::check_consistency`]) and
//! its state at each revision with what a Range at that revision returns
//! ([`CommittedHistory::state_at`]).
//!
//! A failure names the watch, where in its stream, and the first event that is wrong.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

use crate::node::mvcc::KeySpan;
use crate::proto::etcdserverpb::WatchCreateRequest;
use crate::proto::etcdserverpb::WatchResponse;
use crate::proto::etcdserverpb::watch_create_request::FilterType;
use crate::proto::mvccpb::Event;
use crate::proto::mvccpb::KeyValue;
use crate::proto::mvccpb::event::EventType;

/// What a watch asked for (its start revision belongs to each [`Segment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    pub key: Bytes,
    pub range_end: Bytes,
    pub prev_kv: bool,
    pub no_put: bool,
    pub no_delete: bool,
}

impl WatchSpec {
    pub fn key(key: impl Into<Bytes>) -> WatchSpec {
        WatchSpec { key: key.into(), range_end: Bytes::new(), prev_kv: false, no_put: false, no_delete: false }
    }

    /// Every key starting with `prefix` (which must not be empty).
    pub fn prefix(prefix: impl Into<Bytes>) -> WatchSpec {
        let key: Bytes = prefix.into();
        WatchSpec { range_end: prefix_end(&key), ..WatchSpec::key(key) }
    }

    pub fn with_prev_kv(self) -> WatchSpec {
        WatchSpec { prev_kv: true, ..self }
    }

    pub fn from_request(req: &WatchCreateRequest) -> WatchSpec {
        let has = |f: FilterType| req.filters.contains(&(f as i32));
        WatchSpec {
            key: req.key.clone(),
            range_end: req.range_end.clone(),
            prev_kv: req.prev_kv,
            no_put: has(FilterType::Noput),
            no_delete: has(FilterType::Nodelete),
        }
    }

    /// The request that creates this watch from `start_revision`.
    pub fn to_request(&self, start_revision: i64) -> WatchCreateRequest {
        let mut filters = Vec::new();
        if self.no_put {
            filters.push(FilterType::Noput as i32);
        }
        if self.no_delete {
            filters.push(FilterType::Nodelete as i32);
        }
        WatchCreateRequest {
            key: self.key.clone(),
            range_end: self.range_end.clone(),
            start_revision,
            prev_kv: self.prev_kv,
            filters,
            ..Default::default()
        }
    }

    fn wants(&self, event: &Event) -> bool {
        let Some(kv) = &event.kv else { return false };
        let key = if self.key.is_empty() { &b"\0"[..] } else { &self.key[..] };
        if !KeySpan::new(key, &self.range_end).contains(&kv.key) {
            return false;
        }
        match EventType::try_from(event.r#type) {
            Ok(EventType::Put) => !self.no_put,
            Ok(EventType::Delete) => !self.no_delete,
            Err(_) => false,
        }
    }
}

pub use crate::client::prefix_end;

/// One connection's worth of a watch: where it started and everything it received, in order.
/// A watch that was resumed after a disconnection is several segments.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    /// Where this segment ran, for reports (a member name, say).
    pub label: String,
    /// The revision it started at (for a watch "from now": the creation header's revision
    /// plus one).
    pub start_revision: i64,
    pub responses: Vec<WatchResponse>,
}

/// Every event committed up to some revision, grouped by revision.
#[derive(Debug, Clone, Default)]
pub struct CommittedHistory {
    revisions: BTreeMap<i64, Vec<Event>>,
    through: i64,
}

impl CommittedHistory {
    /// The history made of `events` (in the order they were committed), complete through
    /// revision `through`.
    pub fn from_events(events: impl IntoIterator<Item = Event>, through: i64) -> Result<CommittedHistory, String> {
        let mut revisions: BTreeMap<i64, Vec<Event>> = BTreeMap::new();
        let mut last = 0;
        for event in events {
            let revision = event.kv.as_ref().map_or(0, |kv| kv.mod_revision);
            if revision < last || revision <= 0 {
                return Err(format!("history event at revision {revision} comes after revision {last}"));
            }
            if revision > through {
                return Err(format!("history event at revision {revision} is beyond {through}"));
            }
            last = revision;
            revisions.entry(revision).or_default().push(event);
        }
        Ok(CommittedHistory { revisions, through })
    }

    pub fn through(&self) -> i64 {
        self.through
    }

    pub fn event_count(&self) -> usize {
        self.revisions.values().map(Vec::len).sum()
    }

    /// The events of revision `revision`.
    pub fn at(&self, revision: i64) -> &[Event] {
        self.revisions.get(&revision).map_or(&[], Vec::as_slice)
    }

    /// The key-values that exist at `revision`, by replaying the history from the start.
    pub fn state_at(&self, revision: i64) -> BTreeMap<Bytes, KeyValue> {
        let mut state = BTreeMap::new();
        for event in self.revisions.range(..=revision).flat_map(|(_, events)| events) {
            apply(&mut state, event);
        }
        state
    }

    /// Checks that every event's `prev_kv` is the key-value the history itself says the key
    /// had just before (so the history holds together); `Err` names the first that does not.
    pub fn check_consistency(&self) -> Result<(), String> {
        let mut state: BTreeMap<Bytes, KeyValue> = BTreeMap::new();
        for (revision, events) in &self.revisions {
            // prev_kv is the value before the whole revision, even for a key changed twice
            let before = state.clone();
            for event in events {
                let Some(kv) = &event.kv else { return Err(format!("revision {revision}: an event without a key")) };
                let expected = before.get(&kv.key);
                if event.prev_kv.as_ref() != expected {
                    return Err(format!(
                        "revision {revision}, key {}: prev_kv {} but the history before it has {}",
                        show_key(&kv.key),
                        show_kv(event.prev_kv.as_ref()),
                        show_kv(expected)
                    ));
                }
                apply(&mut state, event);
            }
        }
        Ok(())
    }

    /// What `spec` should be told about revisions `from..=to`, in order.
    pub fn expected(&self, spec: &WatchSpec, from: i64, to: i64) -> Vec<Event> {
        if from > to {
            return Vec::new();
        }
        self.revisions
            .range(from..=to)
            .flat_map(|(_, events)| events)
            .filter(|e| spec.wants(e))
            .map(|e| {
                let mut e = e.clone();
                if !spec.prev_kv {
                    e.prev_kv = None;
                }
                e
            })
            .collect()
    }
}

fn apply(state: &mut BTreeMap<Bytes, KeyValue>, event: &Event) {
    let Some(kv) = &event.kv else { return };
    if event.r#type == EventType::Delete as i32 {
        state.remove(&kv.key);
    } else {
        state.insert(kv.key.clone(), kv.clone());
    }
}

/// What one watch was checked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSummary {
    pub events: usize,
    pub bookmarks: usize,
    /// The last revision the watch is known to have been told everything up to.
    pub covered: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// An event that does not belong where it came (not in the history, already delivered,
    /// or out of order).
    Unexpected,
    /// An event the watch should have received and did not.
    Gap,
    /// An event whose key-value or previous key-value differs from the history's.
    WrongEvent,
    /// The events of one revision came in more than one response.
    SplitRevision,
    /// A progress notification at R before every event up to R.
    EarlyBookmark,
    /// A segment resumed somewhere else than right after what the previous one covered.
    BadResume,
    /// The server cancelled the watch (or sent something a watch never gets).
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchViolation {
    pub watch: String,
    pub kind: ViolationKind,
    pub segment: usize,
    /// Index of the response in its segment.
    pub response: usize,
    pub revision: i64,
    pub detail: String,
}

impl fmt::Display for WatchViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "watch {}: {:?} at revision {} (segment {}, response {}): {}",
            self.watch, self.kind, self.revision, self.segment, self.response, self.detail
        )
    }
}

impl std::error::Error for WatchViolation {}

/// Checks one watch, made of one or more segments, against `history`. Segments must cover
/// nothing beyond the history.
pub fn check_watch(
    history: &CommittedHistory,
    watch: &str,
    spec: &WatchSpec,
    segments: &[Segment],
) -> Result<WatchSummary, WatchViolation> {
    let mut summary = WatchSummary { events: 0, bookmarks: 0, covered: 0 };
    for (index, segment) in segments.iter().enumerate() {
        let fail = |kind, response, revision, detail: String| WatchViolation {
            watch: watch.to_string(),
            kind,
            segment: index,
            response,
            revision,
            detail,
        };
        if index > 0 && segment.start_revision != summary.covered + 1 {
            return Err(fail(
                ViolationKind::BadResume,
                0,
                segment.start_revision,
                format!(
                    "resumed on {} at revision {} but the watch had covered up to {}",
                    segment.label, segment.start_revision, summary.covered
                ),
            ));
        }
        let expected = history.expected(spec, segment.start_revision.max(1), history.through());
        let mut cursor = 0usize;
        let mut covered = segment.start_revision - 1;
        let mut pending_fragments: Option<(usize, Vec<Event>)> = None;
        for (at, response) in segment.responses.iter().enumerate() {
            if response.created && !response.canceled && response.events.is_empty() {
                continue;
            }
            if response.canceled {
                let why = if response.compact_revision != 0 {
                    format!("compacted at {}", response.compact_revision)
                } else {
                    format!("reason {:?}", response.cancel_reason)
                };
                return Err(fail(
                    ViolationKind::Cancelled,
                    at,
                    covered,
                    format!("cancelled on {}: {why}", segment.label),
                ));
            }
            // fragments of one response are checked together, as the client joins them
            let (first_at, events) = match pending_fragments.take() {
                Some((first_at, mut events)) => {
                    events.extend(response.events.iter().cloned());
                    (first_at, events)
                }
                None => (at, response.events.clone()),
            };
            if response.fragment {
                pending_fragments = Some((first_at, events));
                continue;
            }
            let revision = response.header.as_ref().map_or(0, |h| h.revision);
            if events.is_empty() {
                // a progress notification: a bookmark at its header revision
                if let Some(missing) = expected.get(cursor).filter(|e| mod_revision(e) <= revision) {
                    return Err(fail(
                        ViolationKind::EarlyBookmark,
                        at,
                        revision,
                        format!(
                            "progress notification at {revision} on {} before the event {}",
                            segment.label,
                            show_event(missing)
                        ),
                    ));
                }
                if revision > history.through() {
                    return Err(fail(
                        ViolationKind::Unexpected,
                        at,
                        revision,
                        format!("progress notification at {revision}, beyond the history's {}", history.through()),
                    ));
                }
                summary.bookmarks += 1;
                covered = covered.max(revision);
                continue;
            }
            for event in &events {
                let got_revision = mod_revision(event);
                let Some(want) = expected.get(cursor) else {
                    return Err(fail(
                        ViolationKind::Unexpected,
                        first_at,
                        got_revision,
                        format!("{} after every expected event was delivered", show_event(event)),
                    ));
                };
                let want_revision = mod_revision(want);
                if event_identity(event) != event_identity(want) {
                    let (kind, detail) = if got_revision > want_revision {
                        (
                            ViolationKind::Gap,
                            format!("got {} but {} was never delivered", show_event(event), show_event(want)),
                        )
                    } else {
                        (
                            ViolationKind::Unexpected,
                            format!("got {} where {} was due", show_event(event), show_event(want)),
                        )
                    };
                    return Err(fail(kind, first_at, got_revision.min(want_revision), detail));
                }
                if event != want {
                    return Err(fail(
                        ViolationKind::WrongEvent,
                        first_at,
                        got_revision,
                        format!(
                            "{}: got kv {} prev_kv {}, the history has kv {} prev_kv {}",
                            show_event(event),
                            show_kv(event.kv.as_ref()),
                            show_kv(event.prev_kv.as_ref()),
                            show_kv(want.kv.as_ref()),
                            show_kv(want.prev_kv.as_ref())
                        ),
                    ));
                }
                cursor += 1;
                summary.events += 1;
                covered = covered.max(got_revision);
            }
            // atomic: whatever the watch wants of the last revision must have come along
            if let (Some(last), Some(next)) = (events.last(), expected.get(cursor))
                && mod_revision(next) == mod_revision(last)
            {
                return Err(fail(
                    ViolationKind::SplitRevision,
                    first_at,
                    mod_revision(last),
                    format!("the response ended before {} of the same revision", show_event(next)),
                ));
            }
        }
        summary.covered = covered;
    }
    Ok(summary)
}

fn mod_revision(event: &Event) -> i64 {
    event.kv.as_ref().map_or(0, |kv| kv.mod_revision)
}

/// What makes an event that event: its revision, kind and key.
fn event_identity(event: &Event) -> (i64, i32, &[u8]) {
    (mod_revision(event), event.r#type, event.kv.as_ref().map_or(&[][..], |kv| &kv.key[..]))
}

fn show_key(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

fn show_event(event: &Event) -> String {
    let kind = if event.r#type == EventType::Delete as i32 { "DELETE" } else { "PUT" };
    let key = event.kv.as_ref().map(|kv| show_key(&kv.key)).unwrap_or_default();
    format!("{kind} {key:?} at revision {}", mod_revision(event))
}

fn show_kv(kv: Option<&KeyValue>) -> String {
    match kv {
        None => "none".to_string(),
        Some(kv) => format!(
            "{{{:?}={:?} create {} mod {} version {} lease {}}}",
            show_key(&kv.key),
            String::from_utf8_lossy(&kv.value),
            kv.create_revision,
            kv.mod_revision,
            kv.version,
            kv.lease
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::etcdserverpb::ResponseHeader;

    /// A history: each inner list is one revision (from 2 on) of puts ("k=v") and deletes
    /// ("-k").
    fn history(revisions: &[&[&str]]) -> CommittedHistory {
        let mut state: BTreeMap<Bytes, KeyValue> = BTreeMap::new();
        let mut events = Vec::new();
        for (i, changes) in revisions.iter().enumerate() {
            let revision = i as i64 + 2;
            let before = state.clone();
            for change in *changes {
                if let Some(key) = change.strip_prefix('-') {
                    let key = Bytes::from(key.to_string());
                    let prev = before.get(&key).cloned();
                    state.remove(&key);
                    let kv = KeyValue { key, mod_revision: revision, ..Default::default() };
                    events.push(Event { r#type: EventType::Delete as i32, kv: Some(kv), prev_kv: prev });
                } else {
                    let (key, value) = change.split_once('=').unwrap();
                    let key = Bytes::from(key.to_string());
                    let prev = before.get(&key).cloned();
                    let kv = KeyValue {
                        key: key.clone(),
                        create_revision: prev.as_ref().map_or(revision, |p| p.create_revision),
                        mod_revision: revision,
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                        value: Bytes::from(value.to_string()),
                        lease: 0,
                    };
                    state.insert(key, kv.clone());
                    events.push(Event { r#type: EventType::Put as i32, kv: Some(kv), prev_kv: prev });
                }
            }
        }
        CommittedHistory::from_events(events, revisions.len() as i64 + 1).unwrap()
    }

    fn sample() -> CommittedHistory {
        history(&[&["a=1"], &["b=1", "a=2"], &["-a"], &["c=1"], &["a=3", "b=2"]])
    }

    fn response(revision: i64, events: Vec<Event>) -> WatchResponse {
        WatchResponse { header: Some(ResponseHeader { revision, ..Default::default() }), events, ..Default::default() }
    }

    fn created() -> WatchResponse {
        WatchResponse { created: true, ..response(1, vec![]) }
    }

    fn progress(revision: i64) -> WatchResponse {
        response(revision, vec![])
    }

    /// The correct responses for `spec` from `from`: one per revision.
    fn correct(h: &CommittedHistory, spec: &WatchSpec, from: i64) -> Vec<WatchResponse> {
        let mut out = vec![created()];
        for revision in from..=h.through() {
            let events = h.expected(spec, revision, revision);
            if !events.is_empty() {
                out.push(response(revision, events));
            }
        }
        out
    }

    fn segment(start: i64, responses: Vec<WatchResponse>) -> Vec<Segment> {
        vec![Segment { label: "n1".into(), start_revision: start, responses }]
    }

    fn check(h: &CommittedHistory, spec: &WatchSpec, segments: &[Segment]) -> Result<WatchSummary, WatchViolation> {
        check_watch(h, "w", spec, segments)
    }

    #[test]
    fn the_sample_history_holds_together() {
        let h = sample();
        h.check_consistency().unwrap();
        assert_eq!(h.event_count(), 7);
        let at4 = h.state_at(4);
        assert_eq!(at4.keys().cloned().collect::<Vec<_>>(), vec![Bytes::from("b")]);
        assert_eq!(h.state_at(6).len(), 3);
    }

    #[test]
    fn an_inconsistent_history_is_refused() {
        let mut events: Vec<Event> = (2..=6).flat_map(|r| sample().at(r).to_vec()).collect();
        events[2].prev_kv = None; // "a=2" claims a was new
        let h = CommittedHistory::from_events(events, 6).unwrap();
        let err = h.check_consistency().unwrap_err();
        assert!(err.contains("revision 3, key a"), "{err}");
        assert!(
            CommittedHistory::from_events(sample().at(3).iter().rev().cloned().chain(sample().at(2).to_vec()), 6)
                .is_err()
        );
    }

    #[test]
    fn correct_streams_pass_for_every_kind_of_watch() {
        let h = sample();
        let specs = [
            WatchSpec::key("a"),
            WatchSpec::key("a").with_prev_kv(),
            WatchSpec::prefix("b"),
            WatchSpec { no_put: true, ..WatchSpec::prefix("a") },
            WatchSpec { no_delete: true, range_end: Bytes::from_static(b"\0"), ..WatchSpec::key("\0") },
        ];
        for spec in &specs {
            for from in 1..=7 {
                let summary = check(&h, spec, &segment(from, correct(&h, spec, from))).unwrap();
                assert_eq!(summary.events, h.expected(spec, from, 6).len());
            }
        }
    }

    #[test]
    fn a_repeated_event_is_caught() {
        let h = sample();
        let spec = WatchSpec::key("a");
        let mut responses = correct(&h, &spec, 1);
        responses.insert(2, responses[1].clone());
        let v = check(&h, &spec, &segment(1, responses)).unwrap_err();
        assert_eq!((v.kind, v.revision, v.response), (ViolationKind::Unexpected, 2, 2));
        assert!(v.to_string().contains("PUT \"a\" at revision 2"), "{v}");
    }

    #[test]
    fn a_missing_event_is_a_gap() {
        let h = sample();
        let spec = WatchSpec::key("a");
        let mut responses = correct(&h, &spec, 1);
        responses.remove(2); // a=2 at revision 3
        let v = check(&h, &spec, &segment(1, responses)).unwrap_err();
        assert_eq!((v.kind, v.revision), (ViolationKind::Gap, 3));
        assert!(v.detail.contains("PUT \"a\" at revision 3 was never delivered"), "{v}");
    }

    #[test]
    fn events_out_of_order_are_caught() {
        let h = sample();
        let spec = WatchSpec::key("a");
        let mut responses = correct(&h, &spec, 1);
        responses.swap(1, 2);
        let v = check(&h, &spec, &segment(1, responses)).unwrap_err();
        assert_eq!(v.kind, ViolationKind::Gap);
    }

    #[test]
    fn a_revision_split_across_responses_is_not_atomic() {
        let h = sample();
        let spec = WatchSpec { range_end: Bytes::from_static(b"\0"), ..WatchSpec::key("\0") };
        let mut responses = correct(&h, &spec, 6);
        let both = responses.remove(1);
        assert_eq!(both.events.len(), 2);
        responses.push(response(6, vec![both.events[0].clone()]));
        responses.push(response(6, vec![both.events[1].clone()]));
        let v = check(&h, &spec, &segment(6, responses)).unwrap_err();
        assert_eq!((v.kind, v.revision), (ViolationKind::SplitRevision, 6));
        // as fragments of one response, the same split is fine
        let mut fragmented = correct(&h, &spec, 6);
        let both = fragmented.remove(1);
        fragmented.push(WatchResponse { fragment: true, ..response(6, vec![both.events[0].clone()]) });
        fragmented.push(response(6, vec![both.events[1].clone()]));
        check(&h, &spec, &segment(6, fragmented)).unwrap();
    }

    #[test]
    fn wrong_or_missing_previous_values_are_caught() {
        let h = sample();
        let spec = WatchSpec::key("a").with_prev_kv();
        let mut responses = correct(&h, &spec, 1);
        responses[2].events[0].prev_kv = None;
        let v = check(&h, &spec, &segment(1, responses)).unwrap_err();
        assert_eq!((v.kind, v.revision), (ViolationKind::WrongEvent, 3));
        assert!(v.detail.contains("prev_kv none"), "{v}");
        // and a prev_kv nobody asked for
        let plain = WatchSpec::key("a");
        let mut responses = correct(&h, &plain, 1);
        responses[2].events[0].prev_kv = h.at(3)[1].prev_kv.clone();
        assert_eq!(check(&h, &plain, &segment(1, responses)).unwrap_err().kind, ViolationKind::WrongEvent);
    }

    #[test]
    fn a_wrong_value_is_caught() {
        let h = sample();
        let spec = WatchSpec::key("b");
        let mut responses = correct(&h, &spec, 1);
        responses[1].events[0].kv.as_mut().unwrap().value = Bytes::from("lies");
        assert_eq!(check(&h, &spec, &segment(1, responses)).unwrap_err().kind, ViolationKind::WrongEvent);
    }

    #[test]
    fn filtered_events_must_not_arrive() {
        let h = sample();
        let spec = WatchSpec { no_put: true, ..WatchSpec::key("a") };
        let responses = correct(&h, &WatchSpec::key("a"), 1);
        let v = check(&h, &spec, &segment(1, responses)).unwrap_err();
        assert_eq!((v.kind, v.revision), (ViolationKind::Unexpected, 2));
    }

    #[test]
    fn bookmarks_must_not_run_ahead_of_events() {
        let h = sample();
        let spec = WatchSpec::key("a");
        let mut responses = correct(&h, &spec, 1);
        responses.insert(2, progress(3)); // before a=2 at revision 3
        let v = check(&h, &spec, &segment(1, responses)).unwrap_err();
        assert_eq!((v.kind, v.revision), (ViolationKind::EarlyBookmark, 3));
        let mut responses = correct(&h, &spec, 1);
        responses.insert(2, progress(2));
        responses.push(progress(6));
        let summary = check(&h, &spec, &segment(1, responses)).unwrap();
        assert_eq!((summary.bookmarks, summary.covered), (2, 6));
    }

    #[test]
    fn a_resumed_watch_must_continue_right_after_what_it_covered() {
        let h = sample();
        let spec = WatchSpec::key("a");
        let all = correct(&h, &spec, 1);
        let first = Segment { label: "n1".into(), start_revision: 1, responses: all[..3].to_vec() };
        let resumed =
            |start| Segment { label: "n2".into(), start_revision: start, responses: correct(&h, &spec, start) };
        let summary = check(&h, &spec, &[first.clone(), resumed(4)]).unwrap();
        assert_eq!((summary.events, summary.covered), (4, 6));
        assert_eq!(check(&h, &spec, &[first.clone(), resumed(5)]).unwrap_err().kind, ViolationKind::BadResume);
        assert_eq!(check(&h, &spec, &[first, resumed(3)]).unwrap_err().kind, ViolationKind::BadResume);
    }

    #[test]
    fn a_cancellation_is_reported() {
        let h = sample();
        let spec = WatchSpec::key("a");
        let mut responses = correct(&h, &spec, 1);
        responses.push(WatchResponse { canceled: true, compact_revision: 4, ..progress(6) });
        let v = check(&h, &spec, &segment(1, responses)).unwrap_err();
        assert_eq!(v.kind, ViolationKind::Cancelled);
        assert!(v.detail.contains("compacted at 4"));
    }

    #[test]
    fn prefix_ends_follow_etcd() {
        assert_eq!(prefix_end(b"a/"), Bytes::from("a0"));
        assert_eq!(prefix_end(b"a\xff"), Bytes::from("b"));
        assert_eq!(prefix_end(b"\xff\xff"), Bytes::from_static(b"\0"));
    }
}
