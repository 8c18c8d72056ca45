//! Replay's I/O: the cluster as the recording shows it at a moment, told to the app with the
//! same actions the live pollers send.

use crate::lab::recording::Recording;
use crate::tui::app::Action;
use crate::tui::app::EventView;
use crate::tui::io::Io;

/// Events shown at a moment: the last ones recorded before it.
const EVENTS_SHOWN: usize = 1000;

pub fn show(io: &Io, recording: &Recording, at: i64) {
    let status = recording.status_at(at);
    io.send(Action::Cluster(super::watchers::cluster_view(&status, None, recording.tempo())));
    let events = recording.events_until(at, EVENTS_SHOWN).iter().map(EventView::from_raft).collect();
    io.send(Action::ReplayEvents(events));
    let logs = recording.logs_at(at);
    for m in recording.config.active_members() {
        match logs.iter().find(|(name, _)| *name == m.name) {
            Some((_, log)) => io.send(Action::Log { member: m.name.clone(), log: log.clone() }),
            None => {
                io.send(Action::LogUnavailable { member: m.name.clone(), why: "no log recorded by this moment".into() })
            }
        }
    }
}
