//! The member's own part of the lab's recording (`lab/recording.rs`): that it started, its
//! Raft state whenever it changes, its events, and a sample of its log tail, written to
//! `<lab>/timeline/<member>.jsonl` for `raftty replay`.
//!
//! A change of role, term, leader or membership is recorded at once; indexes that move with
//! every write are recorded at most every [`STATE_EVERY`]; the log tail every
//! [`LOG_EVERY`] when it moved. Events beyond [`EVENTS_PER_SECOND`] are counted, not kept,
//! so a load test cannot flood the disk. Writes are batched and never wait on Raft.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use crate::lab::recording::Record;
use crate::lab::recording::RecordedLog;
use crate::lab::recording::RecordedState;
use crate::lab::recording::Writer;
use crate::lab::recording::now_micros;
use crate::node::admin::AdminService;
use crate::node::events;
use crate::node::member::Member;
use crate::node::raft::metrics_watch::MetricsWatch;

const STATE_EVERY: Duration = Duration::from_millis(100);
const LOG_EVERY: Duration = Duration::from_secs(1);
const FLUSH_EVERY: Duration = Duration::from_millis(100);
const EVENTS_PER_SECOND: usize = 200;
/// Entries kept of each log sample.
const LOG_TAIL: u32 = 20;

/// Runs for the life of the member.
pub async fn record(lab_dir: PathBuf, member: Arc<Member>, admin: AdminService) {
    let name = member.name.clone();
    let mut writer = Writer::open(&lab_dir, &name);
    let mut pending = vec![Record::Started { t: now_micros(), member: name.clone() }];
    let Some((_, mut events)) = events::subscribe() else { return };
    let mut metrics = MetricsWatch::new(&member.raft);
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let stopping = member.until_stopping();
    tokio::pin!(stopping);

    let mut last_state: Option<RecordedState> = None;
    let mut last_shape = None;
    let mut state_written = Instant::now() - STATE_EVERY;
    let mut log_sampled = Instant::now() - LOG_EVERY;
    let mut log_sampled_at_index = None;
    let (mut window_start, mut events_in_window, mut skipped) = (Instant::now(), 0usize, 0u64);

    loop {
        // Whether to look at the state after this wake-up: not after an event, which comes
        // with every write and tells nothing the metrics do not.
        let mut look = false;
        tokio::select! {
            event = events.recv() => match event {
                Ok(e) => {
                    if window_start.elapsed() >= Duration::from_secs(1) {
                        if skipped > 0 {
                            pending.push(skipped_record(&name, skipped));
                        }
                        (window_start, events_in_window, skipped) = (Instant::now(), 0, 0);
                    }
                    if events_in_window < EVENTS_PER_SECOND {
                        events_in_window += 1;
                        pending.push(Record::Event {
                            t: e.time_unix_micros,
                            member: name.clone(),
                            event: e.kind,
                            term: e.term,
                            fields: e.fields.into_iter().collect(),
                        });
                    } else {
                        skipped += 1;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => skipped += n,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            open = metrics.changed() => {
                if !open {
                    break;
                }
                // Every write changes the metrics several times: building the member's whole
                // state for each would cost more than the write's own apply. Indexes can wait
                // for the throttle; what a person watches for at once cannot.
                let shape = {
                    let m = metrics.look();
                    (m.current_term, m.current_leader, m.state, *m.membership_config.log_id())
                };
                look = last_shape != Some(shape) || state_written.elapsed() >= STATE_EVERY;
                last_shape = Some(shape);
            }
            // The role also depends on time alone (a leader whose followers stopped answering
            // is no longer one, with no change to Raft's metrics), and throttled index changes
            // wait for a tick: look again every tick.
            _ = flush.tick() => look = true,
            _ = &mut stopping => {
                let state = RecordedState::of(&admin.member_state());
                pending.push(Record::State { t: now_micros(), member: name.clone(), state });
                let _ = writer.write(&pending);
                return;
            }
        }
        if look {
            let now = RecordedState::of(&admin.member_state());
            let record = match &last_state {
                None => true,
                Some(last) if last.changed_shape(&now) => true,
                Some(last) => *last != now && state_written.elapsed() >= STATE_EVERY,
            };
            if record {
                pending.push(Record::State { t: now_micros(), member: name.clone(), state: now.clone() });
                last_state = Some(now);
                state_written = Instant::now();
            }
        }
        if log_sampled.elapsed() >= LOG_EVERY {
            log_sampled = Instant::now();
            let last = last_state.as_ref().map(|s| s.last_log_index);
            if last != log_sampled_at_index
                && let Ok(log) = admin.read_log_window(0, LOG_TAIL).await
            {
                log_sampled_at_index = last;
                pending.push(Record::Log { t: now_micros(), member: name.clone(), log: RecordedLog::of(&log) });
            }
        }
        if !pending.is_empty() && flush_due(&pending) {
            if let Err(e) = writer.write(&pending) {
                tracing::warn!("recording {name}'s timeline: {e:#}");
            }
            pending.clear();
        }
    }
    let _ = writer.write(&pending);
}

/// Whether the batch is due: its oldest record waited one [`FLUSH_EVERY`], or it is big.
fn flush_due(pending: &[Record]) -> bool {
    let oldest = pending.first().map(Record::time).unwrap_or_else(now_micros);
    now_micros() - oldest >= FLUSH_EVERY.as_micros() as i64 || pending.len() >= 256
}

fn skipped_record(name: &str, count: u64) -> Record {
    Record::Event {
        t: now_micros(),
        member: name.to_string(),
        event: "events_not_recorded".into(),
        term: 0,
        fields: [("count".to_string(), count.to_string())].into(),
    }
}
