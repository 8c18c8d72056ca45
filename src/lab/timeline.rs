//! The lab's eyes on Raft: every member's event stream merged into one live timeline, and
//! a member's log as it stands.

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use serde_json::json;
use tokio::sync::mpsc;

use crate::lab::Lab;
use crate::lab::control::admin_client;
use crate::proto::rafttyadmin::EventsRequest;
use crate::proto::rafttyadmin::RaftEvent;
use crate::proto::rafttyadmin::ReadLogRequest;
use crate::proto::rafttyadmin::ReadLogResponse;

/// Follows the event stream of every member of the lab, forever, sending each event to
/// `sink`. A member that is down or restarts is reconnected to when it is back; with
/// `recent`, each connection first replays the member's recent events.
pub async fn follow(lab: &Lab, recent: bool, sink: mpsc::Sender<RaftEvent>) {
    let followers = lab.config.active_members().map(|m| follow_member(lab, &m.name, recent, sink.clone()));
    futures::future::join_all(followers).await;
}

/// Follows one member's event stream until `sink` closes, reconnecting when it comes back.
pub async fn follow_member(lab: &Lab, name: &str, recent: bool, sink: mpsc::Sender<RaftEvent>) {
    let mut replay = recent;
    loop {
        // The lab may have been made anew meanwhile (a restore, a lesson): its members then
        // listen on other ports, which only its config on disk knows.
        let fresh = Lab::open_dir(&lab.dir).ok();
        let lab = fresh.as_ref().unwrap_or(lab);
        if let Ok(mut admin) = admin_client(lab, name, Duration::from_secs(1)).await
            && let Ok(stream) = admin.events(EventsRequest { include_recent: replay }).await
        {
            let mut stream = stream.into_inner();
            // After a reconnection, what is in the buffer was seen already.
            replay = false;
            while let Ok(Some(event)) = stream.message().await {
                if sink.send(event).await.is_err() {
                    return;
                }
            }
        }
        if sink.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// An event as one JSON object: time, member, kind, term, then the event's own fields.
pub fn event_json(e: &RaftEvent) -> Value {
    let mut obj = json!({
        "time": format_time(e.time_unix_micros),
        "member": e.member,
        "kind": e.kind,
        "term": e.term,
    });
    if let Some(map) = obj.as_object_mut() {
        for (k, v) in &e.fields {
            let value = v.parse::<u64>().map(Value::from).unwrap_or_else(|_| Value::from(v.clone()));
            map.entry(k.clone()).or_insert(value);
        }
    }
    obj
}

/// An event as a line for people: `12:00:01.234  n2  term 3  vote_refused  peer=n1 why=...`.
pub fn event_line(e: &RaftEvent) -> String {
    let time = format_time(e.time_unix_micros);
    let clock = time.split('T').nth(1).unwrap_or(&time).trim_end_matches('Z');
    format!("{clock}  {:<4} term {:<3} {:<20} {}", e.member, e.term, e.kind, event_details(e))
}

/// An event's fields as `key=value` words: who first and why last (so a narrow pane cuts
/// neither), the rest by name.
pub fn event_details(e: &RaftEvent) -> String {
    let rank = |k: &str| match k {
        "user" | "cn" => 0,
        "reason" | "why" => 2,
        _ => 1,
    };
    let mut fields: Vec<(&String, &String)> = e.fields.iter().collect();
    fields.sort_by_key(|(k, v)| (rank(k), *k, *v));
    let words: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| if v.contains(' ') { format!("{k}=\"{v}\"") } else { format!("{k}={v}") })
        .collect();
    words.join(" ")
}

fn format_time(unix_micros: i64) -> String {
    let nanos = unix_micros as i128 * 1000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix_micros.to_string())
}

/// Reads `member`'s log: the last `limit` entries, or from index `from` on.
pub async fn read_log(lab: &Lab, member: &str, from: u64, limit: u32) -> Result<ReadLogResponse> {
    let mut admin = admin_client(lab, member, Duration::from_secs(2)).await?;
    Ok(admin.read_log(ReadLogRequest { from, limit }).await?.into_inner())
}

/// The log as a table, with the commit and apply points marked.
pub fn log_table(member: &str, log: &ReadLogResponse) -> String {
    let mut out = format!(
        "log of {member}: last index {}, committed {}, applied {}, snapshot {}, purged up to {}\n",
        log.last_index, log.committed_index, log.applied_index, log.snapshot_index, log.purged_index
    );
    out.push_str(&format!("{:>7}  {:>5}  {:<10}  {}\n", "INDEX", "TERM", "KIND", "ENTRY"));
    for e in &log.entries {
        let mark = if e.index > log.committed_index { "  (not committed)" } else { "" };
        out.push_str(&format!("{:>7}  {:>5}  {:<10}  {}{mark}\n", e.index, e.term, e.kind, e.summary));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_print_as_json_objects_with_their_fields() {
        let e = RaftEvent {
            time_unix_micros: 1_700_000_000_123_456,
            member_id: 1,
            member: "n2".into(),
            term: 3,
            kind: "vote_refused".into(),
            fields: [
                ("peer".to_string(), "n1".to_string()),
                ("why".to_string(), "it is already in term 4".to_string()),
            ]
            .into(),
        };
        let v = event_json(&e);
        assert_eq!(v["member"], "n2");
        assert_eq!(v["kind"], "vote_refused");
        assert_eq!(v["term"], 3);
        assert_eq!(v["peer"], "n1");
        assert_eq!(v["time"], "2023-11-14T22:13:20.123456Z");
        let line = event_line(&e);
        assert!(line.contains("vote_refused") && line.contains("why=\"it is already in term 4\""), "{line}");
    }
}
