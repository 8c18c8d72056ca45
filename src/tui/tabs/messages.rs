//! Tab 8, Messages: step mode. Every Raft message the members would send waits on its link
//! until it is delivered (enter) or dropped (d); the links show what waits on each, and the
//! queue below lists them oldest first.

use crossterm::event::KeyCode;
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::layout::Layout;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::text::Span;
use ratatui::widgets::Block;
use ratatui::widgets::Paragraph;

use crate::lab::faults::StepSettings;
use crate::lab::step::HeldMessage;
use crate::lab::step::Selection;
use crate::tui::app::App;
use crate::tui::app::Effect;
use crate::tui::app::LabOp;
use crate::tui::theme::Theme;

#[derive(Debug, Default)]
pub struct MessagesTab {
    /// What the members hold, oldest first, as last asked.
    pub held: Vec<HeldMessage>,
    pub selected: usize,
    /// The id of the selected message, so the selection stays on it as others come and go.
    selected_id: Option<String>,
}

impl MessagesTab {
    /// A fresh look at the queues.
    pub fn update(&mut self, held: Vec<HeldMessage>) {
        self.held = held;
        if let Some(i) = self.selected_id.as_ref().and_then(|id| self.held.iter().position(|m| &m.id == id)) {
            self.selected = i;
        }
        self.selected = self.selected.min(self.held.len().saturating_sub(1));
        self.selected_id = self.held.get(self.selected).map(|m| m.id.clone());
    }

    pub fn selected(&self) -> Option<&HeldMessage> {
        self.held.get(self.selected)
    }

    fn select(&mut self, i: usize) {
        self.selected = i.min(self.held.len().saturating_sub(1));
        self.selected_id = self.held.get(self.selected).map(|m| m.id.clone());
    }

    pub fn on_key(&mut self, key: KeyEvent, step: Option<StepSettings>) -> Vec<Effect> {
        let op = |op: LabOp| vec![Effect::Lab(op)];
        let chosen = || self.selected().map(|m| Selection::Ids(vec![m.id.clone()]));
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => {
                self.select(self.selected + 1);
                vec![]
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.select(self.selected.saturating_sub(1));
                vec![]
            }
            KeyCode::Enter => chosen().map(|s| op(LabOp::Deliver(s))).unwrap_or_default(),
            KeyCode::Char('d') => chosen().map(|s| op(LabOp::DropMessages(s))).unwrap_or_default(),
            KeyCode::Char('l') => self
                .selected()
                .map(|m| {
                    op(LabOp::Deliver(Selection::Matching {
                        from: Some(m.from.clone()),
                        to: Some(m.to.clone()),
                        kinds: vec![],
                    }))
                })
                .unwrap_or_default(),
            KeyCode::Char('a') if !self.held.is_empty() => op(LabOp::Deliver(Selection::All)),
            KeyCode::Char('s') => match step {
                Some(_) => op(LabOp::Step(None)),
                None => op(LabOp::Step(Some(StepSettings { auto_heartbeats: true }))),
            },
            KeyCode::Char('h') => match step {
                Some(s) => op(LabOp::Step(Some(StepSettings { auto_heartbeats: !s.auto_heartbeats }))),
                None => vec![],
            },
            _ => vec![],
        }
    }
}

pub fn footer(tab: &MessagesTab, step: Option<StepSettings>) -> &'static str {
    match step {
        None => "s step mode on: hold every Raft message until you deliver it",
        Some(_) if tab.held.is_empty() => "s step mode off  h heartbeats flow/held  (nothing waits)",
        Some(_) => "j/k  enter deliver  d drop  l its whole link  a all  h heartbeats flow/wait  s step off",
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let step = app.cluster.as_ref().and_then(|c| c.faults.step);
    let tab = &app.messages;
    let members: Vec<String> = app.member_names();
    let links = directed_links(&members, &tab.held);
    let link_rows = (links.len() as u16 + 3).min(area.height / 2).max(4);
    let [top, bottom] = Layout::vertical([Constraint::Length(link_rows), Constraint::Min(3)]).areas(area);

    let mut lines = vec![match step {
        None => Line::styled(
            " step mode is off: messages flow. Press s (or :step on) to hold every one of them.",
            theme.dim,
        ),
        Some(s) => Line::from(vec![
            Span::styled(" step mode on", theme.warn),
            Span::styled(
                if s.auto_heartbeats { ", heartbeats flow by themselves" } else { ", heartbeats wait too" },
                theme.dim,
            ),
            Span::styled(format!("   {} held", tab.held.len()), theme.text),
        ]),
    }];
    let selected_link = tab.selected().map(|m| (m.from.clone(), m.to.clone()));
    for (from, to, waiting) in &links {
        let style = if waiting.is_empty() { theme.dim } else { theme.warn };
        let mut line = Line::from(vec![
            Span::styled(format!(" {from:>3} "), theme.title),
            Span::styled(if waiting.is_empty() { "──────▶" } else { "──▮▮──▶" }, style),
            Span::styled(format!(" {to:<3}  "), theme.title),
            Span::styled(describe_waiting(waiting), style),
        ]);
        if selected_link.as_ref() == Some(&(from.clone(), to.clone())) {
            line = line.style(theme.selected);
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Links ")), top);
    draw_queue(frame, bottom, tab, theme);
}

/// Every ordered pair of members, with the messages waiting on it.
fn directed_links<'a>(members: &[String], held: &'a [HeldMessage]) -> Vec<(String, String, Vec<&'a HeldMessage>)> {
    let mut links = Vec::new();
    for a in members {
        for b in members {
            if a != b {
                let waiting: Vec<&HeldMessage> = held.iter().filter(|m| &m.from == a && &m.to == b).collect();
                links.push((a.clone(), b.clone(), waiting));
            }
        }
    }
    links
}

/// What waits on a link, counted by kind: `2 append, 1 heartbeat`.
fn describe_waiting(waiting: &[&HeldMessage]) -> String {
    if waiting.is_empty() {
        return "nothing waits".to_string();
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for m in waiting {
        let kind = if m.heartbeat {
            if m.is_answer() { "heartbeat answer".to_string() } else { "heartbeat".to_string() }
        } else {
            m.kind.clone()
        };
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    counts.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
}

fn draw_queue(frame: &mut Frame, area: Rect, tab: &MessagesTab, theme: &Theme) {
    let mut lines = vec![Line::styled(
        format!("  {:<8} {:<9} {:<17} {:>4} {:>6}  {}", "ID", "LINK", "KIND", "TERM", "AGE", "WHAT"),
        theme.dim,
    )];
    if tab.held.is_empty() {
        lines.push(Line::styled("  nothing waits", theme.dim));
    }
    // Keep the selected message in view.
    let rows = area.height.saturating_sub(3) as usize;
    let first = tab.selected.saturating_sub(rows.saturating_sub(1));
    for (i, m) in tab.held.iter().enumerate().skip(first).take(rows) {
        let marker = if i == tab.selected { "▶ " } else { "  " };
        let style = if m.is_answer() { theme.accent } else { theme.text };
        let mut line = Line::from(vec![
            Span::raw(marker),
            Span::styled(format!("{:<8} ", m.id), theme.title),
            Span::raw(format!("{:<9} ", format!("{}→{}", m.from, m.to))),
            Span::styled(format!("{:<17} ", m.kind), style),
            Span::raw(format!("{:>4} {:>6}  ", m.term, format!("{:.1}s", m.age_ms as f64 / 1000.0))),
            Span::styled(m.summary.clone(), style),
        ]);
        if i == tab.selected {
            line = line.style(theme.selected);
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Held messages ")), area);
}

#[cfg(test)]
pub(crate) mod tests {
    use crossterm::event::KeyModifiers;

    use super::*;

    /// A held message for tests: term 2, 0.1 s old, no summary.
    pub(crate) fn held(id: &str, from: &str, to: &str, kind: &str, entries: u32) -> HeldMessage {
        HeldMessage {
            id: id.into(),
            holder: if kind.ends_with("-response") { to.into() } else { from.into() },
            from: from.into(),
            to: to.into(),
            kind: kind.into(),
            term: 2,
            entries,
            summary: String::new(),
            age_ms: 100,
            first_index: 0,
            last_index: 0,
            heartbeat: entries == 0 && kind.starts_with("append"),
        }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn the_selection_follows_its_message_as_others_leave() {
        let mut tab = MessagesTab::default();
        tab.update(vec![held("n1-1", "n1", "n2", "append", 0), held("n1-2", "n1", "n3", "append", 1)]);
        tab.on_key(key(KeyCode::Down), Some(StepSettings::default()));
        assert_eq!(tab.selected().unwrap().id, "n1-2");
        tab.update(vec![held("n1-2", "n1", "n3", "append", 1), held("n1-3", "n1", "n2", "append", 0)]);
        assert_eq!(tab.selected().unwrap().id, "n1-2", "the selection stays on the message, not on the row");
    }

    #[test]
    fn keys_deliver_drop_and_deliver_a_link() {
        let mut tab = MessagesTab::default();
        tab.update(vec![held("n1-1", "n1", "n2", "append", 1)]);
        let on = Some(StepSettings::default());
        assert_eq!(
            tab.on_key(key(KeyCode::Enter), on),
            vec![Effect::Lab(LabOp::Deliver(Selection::Ids(vec!["n1-1".into()])))]
        );
        assert_eq!(
            tab.on_key(key(KeyCode::Char('d')), on),
            vec![Effect::Lab(LabOp::DropMessages(Selection::Ids(vec!["n1-1".into()])))]
        );
        assert_eq!(
            tab.on_key(key(KeyCode::Char('l')), on),
            vec![Effect::Lab(LabOp::Deliver(Selection::Matching {
                from: Some("n1".into()),
                to: Some("n2".into()),
                kinds: vec![]
            }))]
        );
        assert_eq!(
            tab.on_key(key(KeyCode::Char('h')), on),
            vec![Effect::Lab(LabOp::Step(Some(StepSettings { auto_heartbeats: true })))]
        );
        assert_eq!(tab.on_key(key(KeyCode::Char('s')), on), vec![Effect::Lab(LabOp::Step(None))]);
        assert!(tab.on_key(key(KeyCode::Char('h')), None).is_empty(), "no heartbeat setting while step mode is off");
    }

    #[test]
    fn a_link_counts_what_waits_on_it() {
        let messages = [
            held("n1-1", "n1", "n2", "append", 0),
            held("n1-2", "n1", "n2", "append", 2),
            held("n1-3", "n1", "n2", "append", 1),
        ];
        let waiting: Vec<&HeldMessage> = messages.iter().collect();
        assert_eq!(describe_waiting(&waiting), "1 heartbeat, 2 append");
        assert_eq!(describe_waiting(&[]), "nothing waits");
    }
}
