//! What a drill calls a healthy cluster: one leader, every member running and answering,
//! back to the size it had before the disaster, no alarm, and writes committing. The
//! watcher (in the workload) and the score judge by the same rules.

use std::time::Duration;

use crate::lab::Lab;
use crate::lab::process::ProcessState;
use crate::lab::status::Role;

/// How long since the last acknowledged write the watcher still counts writes as committing.
pub const WRITES_RECENT: Duration = Duration::from_secs(2);

/// What keeps the cluster from being healthy, apart from writes (which the caller knows
/// best: the workload from its acknowledgements, the score from a probe).
pub struct Look {
    /// Empty when the cluster looks healthy.
    pub problems: Vec<String>,
    /// Whether one member leads: without, nothing can be read back or compared.
    pub led: bool,
}

pub async fn look(lab: &Lab, members: usize) -> Look {
    let status = match crate::lab::status::gather(lab, Duration::from_secs(1)).await {
        Ok(s) => s,
        Err(e) => return Look { problems: vec![format!("the lab cannot be looked at: {e:#}")], led: false },
    };
    let mut out = Vec::new();
    for n in &status.nodes {
        match (n.state, n.role) {
            (ProcessState::Running, Some(_)) => {}
            (ProcessState::Running, None) => out.push(format!("{} does not answer", n.name)),
            (ProcessState::Paused, _) => out.push(format!("{} is paused", n.name)),
            (ProcessState::Exited, _) => out.push(format!("{} is not running", n.name)),
        }
    }
    if status.nodes.is_empty() {
        out.push("the lab has no members".to_string());
    }
    if status.leader().is_none() {
        out.push("no member leads".to_string());
    }
    let voters = status.nodes.iter().filter(|n| n.role != Some(Role::Learner)).count();
    if voters < members {
        out.push(format!("{voters} voting members, where the cluster had {members} before the disaster"));
    }
    for alarm in &status.alarms {
        out.push(format!("alarm {alarm}"));
    }
    Look { problems: out, led: status.leader().is_some() }
}
