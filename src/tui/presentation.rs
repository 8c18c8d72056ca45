//! Presentation mode, for `raftty demo NAME` on a projector: large member boxes, high
//! contrast, nothing else on screen but the step and its narration. Readable at 100x30.
//!
//! The presenter paces it: space plays the next step (its commands run in `tui/io/demo.rs`,
//! then the step waits until the cluster shows its outcome), backspace returns to the last
//! checkpoint. The next step is only offered once the last one's outcome is there.

use crossterm::event::KeyCode;
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Alignment;
use ratatui::layout::Constraint;
use ratatui::layout::Layout;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::text::Span;
use ratatui::widgets::Block;
use ratatui::widgets::BorderType;
use ratatui::widgets::Paragraph;
use ratatui::widgets::Wrap;

use crate::lab::status::Quorum;
use crate::lab::status::Role;
use crate::tui::app::App;
use crate::tui::app::Effect;
use crate::tui::app::MemberView;
use crate::tui::app::Proc;

/// What the presenter asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum DemoOp {
    /// Play step i (0-based).
    Play(usize),
    /// Back to checkpoint i.
    Back(usize),
}

/// What the demo player reports.
#[derive(Debug, Clone, PartialEq)]
pub enum DemoUpdate {
    /// Step i is under way: the line running, or what its outcome still lacks.
    Doing { step: usize, what: String },
    /// Step i is done: its narration and what its lines printed.
    Done { step: usize, said: String, output: Vec<String> },
    /// Step i could not be done.
    Failed { step: usize, why: String },
}

/// The demo as the screen shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Presentation {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub steps: Vec<String>,
    pub checkpoints: Vec<bool>,
    /// The last step whose outcome was shown (None: the demo has not begun).
    pub done: Option<usize>,
    /// The step under way, and what it is doing.
    pub doing: Option<(usize, String)>,
    pub said: String,
    pub output: Vec<String>,
    pub failed: Option<String>,
    /// `v` shows the ordinary tabs, for a question from the room.
    pub hidden: bool,
}

impl Presentation {
    pub fn new(id: &str, title: &str, summary: &str, steps: Vec<(String, bool)>) -> Presentation {
        let (steps, checkpoints) = steps.into_iter().unzip();
        Presentation {
            id: id.into(),
            title: title.into(),
            summary: summary.into(),
            steps,
            checkpoints,
            done: None,
            doing: None,
            said: String::new(),
            output: vec![],
            failed: None,
            hidden: false,
        }
    }

    fn checkpoint_before(&self, i: usize) -> usize {
        (0..=i.min(self.steps.len().saturating_sub(1))).rev().find(|&j| self.checkpoints[j]).unwrap_or(0)
    }

    /// Where backspace goes: the last checkpoint before the step shown (or, on a
    /// checkpoint, the one before it).
    fn back_target(&self) -> Option<usize> {
        let done = self.done?;
        let here = self.checkpoint_before(done);
        Some(if here == done && done > 0 { self.checkpoint_before(done - 1) } else { here })
    }

    pub fn update(&mut self, update: DemoUpdate) {
        match update {
            DemoUpdate::Doing { step, what } => {
                self.doing = Some((step, what));
                self.failed = None;
            }
            DemoUpdate::Done { step, said, output } => {
                self.doing = None;
                self.done = Some(step);
                self.said = said;
                self.output = output;
            }
            DemoUpdate::Failed { step, why } => {
                self.doing = None;
                self.failed = Some(format!("step {} did not work: {why}", step + 1));
            }
        }
    }

    /// Space, backspace and `v`; None for keys presentation mode leaves to the app.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Vec<Effect>> {
        match key.code {
            KeyCode::Char('v') => {
                self.hidden = !self.hidden;
                Some(vec![])
            }
            _ if self.hidden => None,
            KeyCode::Char(' ') | KeyCode::Right | KeyCode::PageDown => {
                let next = self.done.map_or(0, |d| d + 1);
                if self.doing.is_some() || next >= self.steps.len() {
                    return Some(vec![]);
                }
                Some(vec![Effect::Demo(DemoOp::Play(next))])
            }
            KeyCode::Backspace | KeyCode::Left | KeyCode::PageUp => match self.back_target() {
                Some(target) if self.doing.is_none() => Some(vec![Effect::Demo(DemoOp::Back(target))]),
                _ => Some(vec![]),
            },
            KeyCode::Char('q') | KeyCode::Char(':') | KeyCode::Char('?') | KeyCode::Esc => None,
            // Nothing else may touch the cluster by accident in front of an audience.
            _ => Some(vec![]),
        }
    }
}

/// The whole screen in presentation mode.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let Some(demo) = &app.demo else { return };
    let t = &app.theme;
    let strong = Style::default().add_modifier(Modifier::BOLD);
    let [title, boxes, summary, story, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(9),
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);

    let position = match (demo.doing.as_ref(), demo.done) {
        (Some((i, _)), _) => format!("step {} of {}", i + 1, demo.steps.len()),
        (None, Some(d)) => format!("step {} of {}", d + 1, demo.steps.len()),
        (None, None) => format!("{} steps", demo.steps.len()),
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!(" {} ", demo.title.to_uppercase()), t.tab_active.add_modifier(Modifier::BOLD)),
            Span::styled(format!("  {position}"), strong),
        ])),
        title,
    );

    if let Some(cluster) = &app.cluster {
        let n = cluster.members.len().max(1) as u32;
        let areas = Layout::horizontal((0..n).map(|_| Constraint::Ratio(1, n))).split(boxes);
        for (m, area) in cluster.members.iter().zip(areas.iter()) {
            draw_member(frame, *area, app, m);
        }
        let (quorum, style) = match cluster.quorum {
            Quorum::Healthy => ("QUORUM: yes".to_string(), t.good),
            Quorum::Degraded { .. } => (format!("QUORUM: yes, {}", cluster.quorum), t.warn),
            Quorum::Lost { .. } => (format!("QUORUM: LOST ({})", cluster.quorum), t.bad),
        };
        let network = if cluster.faults_in_words.is_empty() {
            Span::styled("NETWORK: whole", t.good)
        } else {
            Span::styled(format!("NETWORK: {}", cluster.faults_in_words.join("; ")), t.bad.add_modifier(Modifier::BOLD))
        };
        let lines = vec![
            Line::from(vec![
                Span::styled(format!(" {quorum}"), style.add_modifier(Modifier::BOLD)),
                Span::styled(
                    format!(
                        "    LEADER: {}    TERM: {}    REVISION: {}",
                        cluster.leader.as_deref().unwrap_or("none"),
                        cluster.term.map_or("-".into(), |v| v.to_string()),
                        cluster.revision.map_or("-".into(), |v| v.to_string())
                    ),
                    strong,
                ),
            ]),
            Line::from(vec![Span::raw(" "), network]),
        ];
        frame.render_widget(Paragraph::new(lines), summary);
    } else {
        frame.render_widget(Paragraph::new(" connecting to the lab…").style(strong), boxes);
    }

    let mut lines: Vec<Line> = Vec::new();
    let heading = match demo.done {
        Some(d) => format!("{}. {}", d + 1, demo.steps[d]),
        None => demo.title.clone(),
    };
    lines.push(Line::styled(heading, t.title.add_modifier(Modifier::BOLD)));
    lines.push(Line::raw(""));
    let text = if demo.done.is_some() { &demo.said } else { &demo.summary };
    for (i, paragraph) in text.trim().split("\n\n").enumerate() {
        if i > 0 {
            lines.push(Line::raw(""));
        }
        lines.push(Line::styled(paragraph.lines().map(str::trim).collect::<Vec<_>>().join(" "), strong));
    }
    if !demo.output.is_empty() {
        lines.push(Line::raw(""));
        let room = (story.height as usize).saturating_sub(lines.len() + 2).max(2);
        let skip = demo.output.len().saturating_sub(room);
        for l in demo.output.iter().skip(skip) {
            lines.push(Line::styled(l.clone(), t.dim));
        }
    }
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered().border_type(BorderType::Thick).border_style(t.accent).title(format!(" {} ", demo.id)),
        ),
        story,
    );

    let next = demo.done.map_or(0, |d| d + 1);
    let state = match (&demo.doing, &demo.failed) {
        (Some((_, what)), _) => Span::styled(format!(" {what}"), t.warn.add_modifier(Modifier::BOLD)),
        (None, Some(why)) => Span::styled(format!(" {why}"), t.bad.add_modifier(Modifier::BOLD)),
        (None, None) if next < demo.steps.len() => {
            Span::styled(format!(" SPACE: {}", demo.steps[next]), t.good.add_modifier(Modifier::BOLD))
        }
        (None, None) => Span::styled(" the end", t.good.add_modifier(Modifier::BOLD)),
    };
    let back = match demo.back_target() {
        Some(b) => format!("BACKSPACE: back to {}", demo.steps[b]),
        None => String::new(),
    };
    let keys = format!("{back}   v tabs   q quit ");
    let room = (footer.width as usize).saturating_sub(keys.chars().count());
    let state_text: String = state.content.chars().take(room.saturating_sub(1)).collect();
    let pad = room.saturating_sub(state_text.chars().count());
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(state_text, state.style),
            Span::raw(" ".repeat(pad)),
            Span::styled(keys, t.dim),
        ])),
        footer,
    );
}

fn draw_member(frame: &mut Frame, area: Rect, app: &App, m: &MemberView) {
    let t = &app.theme;
    let up = m.process == Proc::Running;
    let (role, style) = match (m.process, m.role) {
        (Proc::Running, Some(Role::Leader)) => ("★ LEADER", t.leader),
        (Proc::Running, Some(Role::Candidate)) => ("? CANDIDATE", t.candidate),
        (Proc::Running, Some(Role::Learner)) => ("◌ LEARNER", t.learner),
        (Proc::Running, Some(Role::Follower)) => ("● FOLLOWER", t.follower),
        (Proc::Running, None) => ("no answer", t.warn),
        (Proc::Paused, _) => ("‖ PAUSED", t.warn),
        (Proc::Killed, _) => ("✗ KILLED", t.bad),
        (Proc::Exited, _) => ("✗ STOPPED", t.bad),
        (Proc::Unreachable, _) => ("✗ UNREACHABLE", t.bad),
    };
    let style = style.add_modifier(Modifier::BOLD);
    let mut lines = vec![
        Line::raw(""),
        Line::styled(m.name.to_uppercase(), Style::default().add_modifier(Modifier::BOLD)),
        Line::styled(role, style),
    ];
    if up {
        lines.push(Line::raw(format!("term {}", m.term.map_or("-".into(), |v| v.to_string()))));
        lines.push(Line::raw(format!(
            "log {}  commit {}",
            m.last_index.map_or("-".into(), |v| v.to_string()),
            m.committed.map_or("-".into(), |v| v.to_string())
        )));
    }
    let block = Block::bordered()
        .border_type(if m.role == Some(Role::Leader) && up { BorderType::Double } else { BorderType::Thick })
        .border_style(style);
    frame.render_widget(Paragraph::new(lines).alignment(Alignment::Center).block(block), area);
}
