//! Step mode, as the lab drives it: put every member's Raft messages on hold, see what waits
//! on which link, and let messages go (or lose them) one at a time.
//!
//! Step mode is part of the lab's network (`faults.json`), so a member that restarts comes
//! back holding its messages. The messages themselves wait inside the members (see
//! `node/step.rs`): a request in its sender, an answer in the member it answers. A message's
//! id names the member that holds it, `n1-17`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use serde::Serialize;

use crate::lab::Lab;
use crate::lab::control;
use crate::lab::faults::LabFaults;
use crate::lab::faults::StepSettings;
use crate::lab::process::ProcessState;
use crate::proto::rafttyadmin::HeldRequest;
use crate::proto::rafttyadmin::ReleaseRequest;

/// One message waiting in step mode, as `raftty step list --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldMessage {
    /// `<holder>-<number>`: what `raftty step deliver` takes.
    pub id: String,
    /// The member whose queue holds it: the sender of a request, the receiver of an answer.
    pub holder: String,
    pub from: String,
    pub to: String,
    pub kind: String,
    pub term: u64,
    pub entries: u32,
    pub summary: String,
    pub age_ms: u64,
    /// The index range of the entries carried (or acknowledged, by an answer); 0 when none.
    pub first_index: u64,
    pub last_index: u64,
    /// An append without entries (a heartbeat), or the answer to one.
    pub heartbeat: bool,
}

impl HeldMessage {
    /// An answer (travelling back to the member that asked).
    pub fn is_answer(&self) -> bool {
        self.kind.ends_with("-response")
    }
}

/// Which held messages to deliver or drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Ids(Vec<String>),
    All,
    /// Every message from `from` to `to` of one of `kinds` (any, where open or empty).
    Matching {
        from: Option<String>,
        to: Option<String>,
        kinds: Vec<String>,
    },
}

/// Every kind of message step mode holds.
pub const KINDS: [&str; 8] = [
    "append",
    "append-response",
    "vote",
    "vote-response",
    "prevote",
    "prevote-response",
    "snapshot",
    "snapshot-response",
];

/// The kinds named in `list` (comma-separated; `votes` stands for votes, pre-votes and their
/// answers), each checked.
pub fn parse_kinds(list: &str) -> Result<Vec<String>> {
    let mut kinds = Vec::new();
    for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if word == "votes" {
            kinds.extend(["vote", "vote-response", "prevote", "prevote-response"].map(String::from));
        } else {
            anyhow::ensure!(
                KINDS.contains(&word),
                "{word:?} is not a kind of message: {} (or votes, for all four kinds of vote)",
                KINDS.join(", ")
            );
            kinds.push(word.to_string());
        }
    }
    anyhow::ensure!(!kinds.is_empty(), "name at least one kind of message: {}", KINDS.join(", "));
    Ok(kinds)
}

/// Turns step mode on (`Some`, also to change its settings) or off. Off delivers everything
/// that was held and returns to normal flow.
pub async fn set(lab: &Lab, step: Option<StepSettings>) -> Result<LabFaults> {
    control::change_faults(lab, |f| {
        f.step = step;
        Ok(())
    })
    .await
}

/// Every message held by the running members, oldest first.
pub async fn held(lab: &Lab) -> Result<Vec<HeldMessage>> {
    let mut all = Vec::new();
    for m in lab.config.active_members() {
        // A paused member cannot answer; its messages wait with it.
        if lab.process(&m.name).state != ProcessState::Running {
            continue;
        }
        let mut admin = control::admin_client(lab, &m.name, Duration::from_secs(2)).await?;
        let reply = admin
            .held(HeldRequest {})
            .await
            .with_context(|| format!("asking {} for its held messages", m.name))?
            .into_inner();
        all.extend(reply.messages.into_iter().map(|h| HeldMessage {
            id: format!("{}-{}", m.name, h.id),
            holder: m.name.clone(),
            from: h.from,
            to: h.to,
            kind: h.kind,
            term: h.term,
            entries: h.entries,
            summary: h.summary,
            age_ms: h.age_ms,
            first_index: h.first_index,
            last_index: h.last_index,
            heartbeat: h.heartbeat,
        }));
    }
    all.sort_by(|a, b| b.age_ms.cmp(&a.age_ms).then_with(|| a.id.cmp(&b.id)));
    Ok(all)
}

/// Splits `n1-17` into its holder and number.
fn parse_id(lab: &Lab, id: &str) -> Result<(String, u64)> {
    let bad = || format!("{id:?} is not a held message's id: ids look like n1-17 (see `raftty step list`)");
    let (holder, number) = id.rsplit_once('-').with_context(bad)?;
    let number: u64 = number.parse().ok().with_context(bad)?;
    lab.config.member(holder).with_context(bad)?;
    Ok((holder.to_string(), number))
}

/// Delivers (or with `drop`, loses) the `selection`; returns how many messages went. Naming a
/// message that is no longer held is an error, after the others have gone.
pub async fn release(lab: &Lab, selection: &Selection, drop: bool) -> Result<u32> {
    // Which messages each holder lets go; None for all of its messages.
    let mut by_holder: BTreeMap<String, Option<Vec<u64>>> = BTreeMap::new();
    match selection {
        Selection::Ids(ids) => {
            anyhow::ensure!(!ids.is_empty(), "name the messages to let go (see `raftty step list`), or use --all");
            for id in ids {
                let (holder, number) = parse_id(lab, id)?;
                by_holder.entry(holder).or_insert_with(|| Some(vec![])).get_or_insert_default().push(number);
            }
        }
        Selection::All => {
            for m in lab.config.active_members() {
                by_holder.insert(m.name.clone(), None);
            }
        }
        Selection::Matching { from, to, kinds } => {
            for name in [from, to].into_iter().flatten() {
                lab.config.member(name)?;
            }
            for h in held(lab).await? {
                if from.as_ref().is_none_or(|f| *f == h.from)
                    && to.as_ref().is_none_or(|t| *t == h.to)
                    && (kinds.is_empty() || kinds.contains(&h.kind))
                {
                    let (holder, number) = parse_id(lab, &h.id)?;
                    by_holder.entry(holder).or_insert_with(|| Some(vec![])).get_or_insert_default().push(number);
                }
            }
        }
    }
    let mut released = 0;
    let mut missing = Vec::new();
    for (holder, ids) in by_holder {
        if lab.process(&holder).state != ProcessState::Running {
            missing.extend(ids.iter().flatten().map(|n| format!("{holder}-{n}")));
            continue;
        }
        let mut admin = control::admin_client(lab, &holder, Duration::from_secs(2)).await?;
        let Some(ids) = ids else {
            let ack = admin
                .release(ReleaseRequest { ids: vec![], all: true, drop })
                .await
                .with_context(|| format!("telling {holder} to let its messages go"))?;
            released += ack.get_ref().released;
            continue;
        };
        for id in ids {
            let ack = admin
                .release(ReleaseRequest { ids: vec![id], all: false, drop })
                .await
                .with_context(|| format!("telling {holder} to let {holder}-{id} go"))?;
            if ack.get_ref().released == 0 {
                missing.push(format!("{holder}-{id}"));
            }
            released += ack.get_ref().released;
        }
    }
    // Among matching messages, one that went meanwhile (its sender gave up) is no surprise.
    if !missing.is_empty() && matches!(selection, Selection::Ids(_)) {
        anyhow::bail!(
            "{} no longer held (delivered, dropped, or given up on by its sender): {}",
            if missing.len() == 1 { "this message is" } else { "these messages are" },
            missing.join(", ")
        );
    }
    Ok(released)
}

/// The held messages as a table for people.
pub fn table(held: &[HeldMessage]) -> String {
    if held.is_empty() {
        return "no messages held".to_string();
    }
    let mut out = format!("{:<9} {:<11} {:<17} {:>4} {:>6}  {}\n", "ID", "LINK", "KIND", "TERM", "AGE", "WHAT");
    for h in held {
        let link = format!("{}->{}", h.from, h.to);
        let age = format!("{:.1}s", h.age_ms as f64 / 1000.0);
        out.push_str(&format!("{:<9} {:<11} {:<17} {:>4} {:>6}  {}\n", h.id, link, h.kind, h.term, age, h.summary));
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: &str, entries: u32) -> HeldMessage {
        HeldMessage {
            id: "n1-3".into(),
            holder: "n1".into(),
            from: "n1".into(),
            to: "n2".into(),
            kind: kind.into(),
            term: 2,
            entries,
            summary: "heartbeat; commit 4".into(),
            age_ms: 1250,
            first_index: 0,
            last_index: 0,
            heartbeat: entries == 0,
        }
    }

    #[test]
    fn answers_are_told_apart() {
        assert!(message("vote-response", 0).is_answer());
        assert!(!message("prevote", 0).is_answer());
    }

    #[test]
    fn kinds_are_checked_and_votes_stands_for_four() {
        assert_eq!(parse_kinds("append, snapshot").unwrap(), vec!["append", "snapshot"]);
        assert_eq!(parse_kinds("votes").unwrap().len(), 4);
        let err = parse_kinds("heartbeat").unwrap_err().to_string();
        assert!(err.contains("not a kind of message") && err.contains("append-response"), "{err}");
        assert!(parse_kinds(",").is_err());
    }

    #[test]
    fn the_table_shows_link_kind_and_age() {
        let text = table(&[message("append", 0)]);
        let row = text.lines().nth(1).unwrap();
        for part in ["n1-3", "n1->n2", "append", "1.2s", "heartbeat; commit 4"] {
            assert!(row.contains(part), "{part:?} missing from {row:?}");
        }
        assert_eq!(table(&[]), "no messages held");
    }
}
