//! Tab 3, Raft log: one column per member, entries aligned by index, with each member's
//! commit and apply points; uncommitted entries look different, an entry a member lacks is
//! a gap, and entries overwritten (after a partition heals) are shown crossed out for a
//! while as they disappear. Follows the tail, and scrolls back.

use std::collections::BTreeMap;
use std::time::Duration;
use std::time::Instant;

use crossterm::event::KeyCode;
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::text::Span;
use ratatui::widgets::Block;
use ratatui::widgets::Paragraph;

use crate::proto::rafttyadmin::LogEntryView;
use crate::proto::rafttyadmin::ReadLogResponse;
use crate::tui::app::App;
use crate::tui::app::Effect;
use crate::tui::theme::role_symbol;

/// How long an overwritten entry stays on screen.
const FADE: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Clone)]
pub struct MemberLog {
    pub entries: BTreeMap<u64, LogEntryView>,
    pub last_index: u64,
    pub committed: u64,
    pub applied: u64,
    pub purged: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Overwritten {
    pub member: String,
    pub entry: LogEntryView,
    pub at: Instant,
}

#[derive(Debug, Default)]
pub struct RaftLogTab {
    pub logs: BTreeMap<String, MemberLog>,
    /// The first index shown when scrolled back; None follows the tail.
    pub top: Option<u64>,
    pub overwritten: Vec<Overwritten>,
    /// Rows that fit (set from the terminal size).
    pub page: usize,
}

impl RaftLogTab {
    pub fn update(&mut self, member: &str, log: ReadLogResponse, now: Instant) {
        let old = self.logs.remove(member).unwrap_or_default();
        let mut new = MemberLog {
            entries: log.entries.into_iter().map(|e| (e.index, e)).collect(),
            last_index: log.last_index,
            committed: log.committed_index,
            applied: log.applied_index,
            purged: log.purged_index,
            error: None,
        };
        // An entry whose index now holds another term, or that lies beyond the new end of
        // the log, was overwritten: Raft replaced an uncommitted tail with the leader's.
        for (index, e) in &old.entries {
            let replaced = match new.entries.get(index) {
                Some(n) => n.term != e.term,
                None => *index > new.last_index,
            };
            if replaced {
                self.overwritten.push(Overwritten { member: member.to_string(), entry: e.clone(), at: now });
            }
        }
        // Keep what was already read of the window, so scrolling back is not blank.
        for (i, e) in old.entries {
            if i <= new.last_index && i > new.purged {
                new.entries.entry(i).or_insert(e);
            }
        }
        let keep_from = new.last_index.saturating_sub(2000);
        new.entries = new.entries.split_off(&keep_from);
        self.logs.insert(member.to_string(), new);
    }

    pub fn unavailable(&mut self, member: &str, why: String) {
        self.logs.entry(member.to_string()).or_default().error = Some(why);
    }

    pub fn has_fading(&self, now: Instant) -> bool {
        self.overwritten.iter().any(|o| now.duration_since(o.at) < FADE)
    }

    pub fn expire(&mut self, now: Instant) {
        self.overwritten.retain(|o| now.duration_since(o.at) < FADE);
    }

    fn max_last(&self) -> u64 {
        self.logs.values().map(|l| l.last_index).max().unwrap_or(0)
    }

    /// The index the poller reads from: None for the tail.
    pub fn window_from(&self) -> Option<u64> {
        self.top
    }

    fn first_shown(&self) -> u64 {
        let page = self.page.max(1) as u64;
        match self.top {
            Some(top) => top,
            None => self.max_last().saturating_sub(page - 1).max(1),
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let page = self.page.max(1) as u64;
        let first = self.first_shown();
        let before = self.top;
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.top = Some(first.saturating_sub(1).max(1)),
            KeyCode::Down | KeyCode::Char('j') => self.top = Some(first + 1),
            KeyCode::PageUp => self.top = Some(first.saturating_sub(page).max(1)),
            KeyCode::PageDown => self.top = Some(first + page),
            KeyCode::Home | KeyCode::Char('g') => self.top = Some(1),
            KeyCode::End | KeyCode::Char('G') | KeyCode::Char('f') => self.top = None,
            _ => return vec![],
        }
        if self.top.is_some_and(|t| t + page > self.max_last()) {
            self.top = None;
        }
        if self.top == before {
            return vec![];
        }
        vec![Effect::LogWindow { from: self.top }]
    }
}

pub fn footer(tab: &RaftLogTab) -> &'static str {
    if tab.top.is_some() {
        "j/k scroll  PgUp/PgDn page  G follow the tail again"
    } else {
        "following the tail  j/k/PgUp scroll back  g first entry"
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let tab = &app.log;
    if !app.target.is_lab() {
        let text = "The Raft log view needs a raftty lab: etcd does not show its log over the API.\n\
                    Start one with `raftty` (or `raftty up`) to see every member's log side by side.";
        frame.render_widget(Paragraph::new(text).style(theme.dim).block(Block::bordered().title(" Raft log ")), area);
        return;
    }
    let names: Vec<String> = app.member_names();
    let inner_width = area.width.saturating_sub(2) as usize;
    const INDEX_WIDTH: usize = 8;
    let col = if names.is_empty() { 10 } else { (inner_width.saturating_sub(INDEX_WIDTH)) / names.len() };
    let height = area.height.saturating_sub(3) as usize;
    let first = {
        let page = height.max(1) as u64;
        match tab.top {
            Some(top) => top,
            None => tab.max_last().saturating_sub(page - 1).max(1),
        }
    };
    let fit = |s: String, w: usize| -> String {
        let mut out: String = s.chars().take(w.saturating_sub(1)).collect();
        let len = out.chars().count();
        out.extend(std::iter::repeat_n(' ', w.saturating_sub(len)));
        out
    };
    let mut lines = Vec::new();
    let mut head = vec![Span::styled(fit("INDEX".into(), INDEX_WIDTH), theme.dim)];
    for name in &names {
        let role = app.cluster.as_ref().and_then(|c| c.member(name)).and_then(|m| m.role);
        let text = match tab.logs.get(name) {
            Some(l) if l.error.is_none() => {
                format!(
                    "{} {name} last {} commit {} applied {}",
                    role_symbol(role),
                    l.last_index,
                    l.committed,
                    l.applied
                )
            }
            Some(l) => format!("{} {name}: {}", role_symbol(role), l.error.as_deref().unwrap_or("")),
            None => format!("{name}: reading…"),
        };
        head.push(Span::styled(fit(text, col), theme.role(role)));
    }
    lines.push(Line::from(head));
    for index in first..first + height as u64 {
        if index > tab.max_last() {
            break;
        }
        let mut spans = vec![Span::styled(fit(index.to_string(), INDEX_WIDTH), theme.dim)];
        for name in &names {
            let log = tab.logs.get(name);
            let gone = tab.overwritten.iter().rev().find(|o| &o.member == name && o.entry.index == index);
            let (text, style) = match (log, gone) {
                (_, Some(o)) => (format!("✗ t{} {}", o.entry.term, o.entry.summary), theme.overwritten),
                (None, None) => (String::new(), theme.dim),
                (Some(l), None) => match l.entries.get(&index) {
                    Some(e) => {
                        let mark = if index == l.committed && index == l.applied {
                            "◆"
                        } else if index == l.committed {
                            "C"
                        } else if index == l.applied {
                            "A"
                        } else if index > l.committed {
                            "?"
                        } else {
                            "│"
                        };
                        let style = if index > l.committed { theme.uncommitted } else { theme.text };
                        (format!("{mark} t{} {}", e.term, e.summary), style)
                    }
                    None if index <= l.purged => ("  (in a snapshot)".to_string(), theme.dim),
                    None if index > l.last_index => ("  ·".to_string(), theme.dim),
                    None => ("  …".to_string(), theme.dim),
                },
            };
            spans.push(Span::styled(fit(text, col), style));
        }
        lines.push(Line::from(spans));
    }
    let follow = if tab.top.is_none() { "following the tail" } else { "scrolled back" };
    let title = format!(" Raft log: {follow} ");
    let legend = " │ committed  ? not committed  ◆ commit and applied  C commit  A applied  · gap  ✗ overwritten ";
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(title).title_bottom(legend)), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, summary: &str) -> LogEntryView {
        LogEntryView { index, term, kind: "normal".into(), summary: summary.into() }
    }

    fn log(entries: Vec<LogEntryView>, committed: u64) -> ReadLogResponse {
        let last_index = entries.last().map_or(0, |e| e.index);
        ReadLogResponse {
            entries,
            purged_index: 0,
            last_index,
            committed_index: committed,
            applied_index: committed,
            snapshot_index: 0,
        }
    }

    #[test]
    fn entries_replaced_by_another_term_or_cut_off_are_remembered_as_overwritten() {
        let mut tab = RaftLogTab::default();
        let t0 = Instant::now();
        tab.update("n1", log(vec![entry(1, 1, "put a"), entry(2, 2, "put stale"), entry(3, 2, "put stale2")], 1), t0);
        tab.update("n1", log(vec![entry(1, 1, "put a"), entry(2, 3, "put fresh")], 2), t0);
        let gone: Vec<(u64, &str)> =
            tab.overwritten.iter().map(|o| (o.entry.index, o.entry.summary.as_str())).collect();
        assert_eq!(gone, [(2, "put stale"), (3, "put stale2")]);
        assert!(tab.has_fading(t0));
        tab.expire(t0 + FADE + Duration::from_secs(1));
        assert!(tab.overwritten.is_empty());
    }

    #[test]
    fn scrolling_back_stops_following_and_the_end_follows_again() {
        let mut tab = RaftLogTab { page: 10, ..Default::default() };
        tab.update("n1", log((1..=100).map(|i| entry(i, 1, "put")).collect(), 100), Instant::now());
        assert_eq!(tab.on_key(KeyEvent::from(KeyCode::PageUp)), vec![Effect::LogWindow { from: Some(81) }]);
        assert_eq!(tab.on_key(KeyEvent::from(KeyCode::Char('G'))), vec![Effect::LogWindow { from: None }]);
    }
}
