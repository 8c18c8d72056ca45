//! Tab 4, Events: every member's Raft events and what the lab did, as one timeline,
//! filterable by member and by kind, and pausable. Also the short feed on the Cluster tab.

use std::collections::VecDeque;

use crossterm::event::KeyCode;
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::text::Span;
use ratatui::widgets::Block;
use ratatui::widgets::Paragraph;

use crate::tui::app::App;
use crate::tui::app::EventView;
use crate::tui::theme::Theme;

const KEEP: usize = 5000;

/// Groups of event kinds a person filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KindFilter {
    #[default]
    All,
    Elections,
    Replication,
    Faults,
    Membership,
    Snapshots,
    /// Clients and requests a member refused: certificates, permissions, passwords.
    Refusals,
}

impl KindFilter {
    const ORDER: [KindFilter; 7] = [
        KindFilter::All,
        KindFilter::Elections,
        KindFilter::Replication,
        KindFilter::Faults,
        KindFilter::Membership,
        KindFilter::Snapshots,
        KindFilter::Refusals,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KindFilter::All => "all",
            KindFilter::Elections => "elections",
            KindFilter::Replication => "replication",
            KindFilter::Faults => "faults",
            KindFilter::Membership => "membership",
            KindFilter::Snapshots => "snapshots",
            KindFilter::Refusals => "refusals",
        }
    }

    pub fn admits(self, kind: &str) -> bool {
        match self {
            KindFilter::All => true,
            KindFilter::Elections => {
                kind.contains("vote") || kind.contains("elect") || kind.contains("role") || kind.contains("leader")
            }
            KindFilter::Replication => {
                kind.contains("append")
                    || kind.contains("commit")
                    || kind.contains("appl")
                    || kind.contains("conflict")
                    || kind.contains("truncat")
            }
            KindFilter::Faults => kind.contains("fault") || kind == "process" || kind.contains("quorum"),
            KindFilter::Membership => kind.contains("member"),
            KindFilter::Snapshots => kind.contains("snapshot"),
            KindFilter::Refusals => kind == "client_refused" || kind == "request_refused",
        }
    }

    fn next(self) -> KindFilter {
        let i = KindFilter::ORDER.iter().position(|k| *k == self).unwrap_or(0);
        KindFilter::ORDER[(i + 1) % KindFilter::ORDER.len()]
    }
}

#[derive(Debug, Default)]
pub struct EventsTab {
    events: VecDeque<EventView>,
    /// Events that arrived while paused, shown on resume.
    held: Vec<EventView>,
    pub paused: bool,
    pub member: Option<String>,
    pub kind: KindFilter,
    pub filter_text: String,
    /// Lines scrolled back from the newest.
    pub scroll: usize,
}

impl EventsTab {
    /// Forgets every event shown (a replay moving to another moment).
    pub fn clear(&mut self) {
        self.events.clear();
        self.held.clear();
        self.scroll = 0;
    }

    pub fn push(&mut self, e: EventView) {
        if self.paused {
            self.held.push(e);
            return;
        }
        if self.events.len() == KEEP {
            self.events.pop_front();
        }
        // Members' streams arrive one after the other (a reconnection replays a backlog):
        // keep the timeline in time order. Nearly always the new event goes last.
        let at = self.events.iter().rposition(|x| x.time_unix_micros <= e.time_unix_micros).map_or(0, |i| i + 1);
        self.events.insert(at, e);
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn latest(&self) -> impl DoubleEndedIterator<Item = &EventView> {
        self.events.iter()
    }

    fn admits(&self, e: &EventView) -> bool {
        self.member.as_ref().is_none_or(|m| &e.member == m)
            && self.kind.admits(&e.kind)
            && (self.filter_text.is_empty()
                || e.kind.contains(&self.filter_text)
                || e.details.contains(&self.filter_text))
    }

    pub fn on_key(&mut self, key: KeyEvent, members: &[String]) {
        match key.code {
            KeyCode::Char(' ') => {
                self.paused = !self.paused;
                if !self.paused {
                    for e in std::mem::take(&mut self.held) {
                        self.push(e);
                    }
                }
            }
            KeyCode::Char('m') => {
                let i = self.member.as_ref().and_then(|m| members.iter().position(|x| x == m));
                self.member = match i {
                    None => members.first().cloned(),
                    Some(i) if i + 1 < members.len() => Some(members[i + 1].clone()),
                    Some(_) => None,
                };
            }
            KeyCode::Char('f') => self.kind = self.kind.next(),
            KeyCode::Char('c') => {
                self.member = None;
                self.kind = KindFilter::All;
                self.filter_text.clear();
            }
            KeyCode::Up | KeyCode::Char('k') => self.scroll = (self.scroll + 1).min(self.events.len()),
            KeyCode::Down | KeyCode::Char('j') => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::PageUp => self.scroll = (self.scroll + 20).min(self.events.len()),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(20),
            KeyCode::End | KeyCode::Char('G') => self.scroll = 0,
            _ => {}
        }
    }
}

pub fn footer(tab: &EventsTab) -> String {
    let pause = if tab.paused { "space resume" } else { "space pause" };
    format!("{pause}  m member  f kind  / text  c clear filters  j/k scroll  G newest")
}

pub fn event_line<'a>(e: &EventView, theme: &Theme) -> Line<'a> {
    let style = if e.kind.contains("refused")
        || e.kind.contains("fault")
        || e.kind == "process"
        || e.kind.contains("truncat")
    {
        theme.warn
    } else if e.kind.contains("leader") || e.kind.contains("elect") {
        theme.leader
    } else {
        theme.text
    };
    let term = if e.member == "lab" { "      ".to_string() } else { format!("t{:<4} ", e.term) };
    Line::from(vec![
        Span::styled(format!("{} ", e.clock()), theme.dim),
        Span::styled(format!("{:<4} ", e.member), theme.title),
        Span::styled(term, theme.dim),
        Span::styled(format!("{:<18} ", e.kind), style),
        Span::raw(e.details.clone()),
    ])
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let tab = &app.events;
    let height = area.height.saturating_sub(2) as usize;
    // Only the lines that fit are built: walk back from the newest.
    let shown: Vec<&EventView> =
        tab.events.iter().rev().filter(|e| tab.admits(e)).skip(tab.scroll).take(height).collect();
    let lines: Vec<Line> = shown.into_iter().rev().map(|e| event_line(e, &app.theme)).collect();
    let mut title = format!(" Events: {} of member {} ", tab.kind.name(), tab.member.as_deref().unwrap_or("any"));
    if !tab.filter_text.is_empty() {
        title.push_str(&format!("matching {:?} ", tab.filter_text));
    }
    if tab.paused {
        title.push_str(&format!("— PAUSED, {} waiting ", tab.held.len()));
    }
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(title)), area);
}

/// Routine replication: every write makes some. The Events tab shows them; the short feed
/// on the Cluster tab keeps to the story (elections, faults, processes, membership).
pub fn is_routine(kind: &str) -> bool {
    matches!(kind, "append_sent" | "append_acked" | "applied" | "commit_advanced" | "heartbeat")
}

/// The newest events that tell the story, for the Cluster tab.
pub fn draw_feed(frame: &mut Frame, area: Rect, app: &App) {
    let height = area.height.saturating_sub(2) as usize;
    let shown: Vec<&EventView> = app.events.events.iter().rev().filter(|e| !is_routine(&e.kind)).take(height).collect();
    let lines: Vec<Line> = shown.into_iter().rev().map(|e| event_line(e, &app.theme)).collect();
    let title = " Latest events (replication in tab 4) ";
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(title)), area);
}
