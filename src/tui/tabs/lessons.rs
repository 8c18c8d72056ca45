//! Tab 6, Lessons: the course with the learner's progress, and the lesson under way.
//!
//! While a lesson runs its pane stays beside whatever tab is open (at the right on a wide
//! terminal, below on a narrow one), so the learner reads the step and looks at the
//! cluster, the keys or the log at once. The checks themselves run in `tui/io/lessons.rs`,
//! every second and after every action, and report here as [`LessonUpdate`]s.

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
use ratatui::widgets::Wrap;

use crate::tui::app::App;
use crate::tui::app::Effect;
use crate::tui::theme::Theme;

/// Work on lessons the app can ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum LessonOp {
    /// Read the lessons and the progress again.
    Catalog,
    /// Make the lesson's lab afresh (this app's lab) and begin step 1.
    Start(String),
    /// Leave the lesson; its progress is kept.
    Stop,
    Hint,
    /// Play the current step's solution; the step then counts as shown, not solved.
    Solution,
    ResetStep,
    /// The whole lesson again, on a fresh lab.
    ResetLesson,
}

impl LessonOp {
    pub fn describe(&self) -> String {
        match self {
            LessonOp::Catalog => "lessons".into(),
            LessonOp::Start(id) => format!("lesson {id}"),
            LessonOp::Stop => "lesson stop".into(),
            LessonOp::Hint => "hint".into(),
            LessonOp::Solution => "solution".into(),
            LessonOp::ResetStep => "reset step".into(),
            LessonOp::ResetLesson => "reset lesson".into(),
        }
    }
}

/// One lesson in the list, with the learner's progress in it.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonEntry {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub members: usize,
    pub step_titles: Vec<String>,
    /// Steps passed so far (by the learner or with the solution shown).
    pub passed: usize,
    pub finished: bool,
}

/// The step under way, as the coach last judged it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepView {
    pub lesson: String,
    pub lesson_title: String,
    /// 1-based.
    pub number: usize,
    pub steps: usize,
    pub title: String,
    pub goal: String,
    pub text: String,
    /// The hints revealed so far, in order.
    pub hints: Vec<String>,
    pub hints_total: usize,
    /// What the last check found still missing; None until the first check, empty when
    /// the step passed.
    pub missing: Option<String>,
    /// Steps solved by the learner, and steps passed with the solution shown.
    pub solved: usize,
    pub shown: usize,
    pub finished: bool,
}

/// A step that just passed, shown until the next one does.
#[derive(Debug, Clone, PartialEq)]
pub struct Passed {
    pub number: usize,
    pub title: String,
    pub explanation: String,
    /// False when the solution was played.
    pub by_learner: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LessonUpdate {
    Catalog(Vec<LessonEntry>),
    /// The lesson under way, or none.
    Step(Option<StepView>),
    Passed(Passed),
    /// Long work on a lesson (making its lab), or None when it is over.
    Busy(Option<String>),
}

#[derive(Debug, Default)]
pub struct LessonsTab {
    pub catalog: Vec<LessonEntry>,
    pub selected: usize,
    pub current: Option<StepView>,
    pub passed: Option<Passed>,
    pub busy: Option<String>,
    /// The learner hid the pane beside the other tabs (F8).
    pub pane_hidden: bool,
}

/// What a key on the Lessons tab leads to.
pub enum KeyOutcome {
    Nothing,
    Effect(Effect),
}

impl LessonsTab {
    pub fn update(&mut self, update: LessonUpdate) {
        match update {
            LessonUpdate::Catalog(list) => {
                if let Some(current) = &self.current
                    && let Some(i) = list.iter().position(|l| l.id == current.lesson)
                    && self.catalog.is_empty()
                {
                    self.selected = i;
                }
                self.catalog = list;
                self.selected = self.selected.min(self.catalog.len().saturating_sub(1));
            }
            LessonUpdate::Step(view) => {
                if view.as_ref().map(|v| &v.lesson) != self.current.as_ref().map(|v| &v.lesson) {
                    self.passed = None;
                }
                if let Some(v) = &view
                    && let Some(entry) = self.catalog.iter_mut().find(|l| l.id == v.lesson)
                {
                    entry.passed = v.solved + v.shown;
                    entry.finished = v.finished;
                }
                self.current = view;
            }
            LessonUpdate::Passed(p) => self.passed = Some(p),
            LessonUpdate::Busy(what) => self.busy = what,
        }
    }

    /// Whether the lesson pane is drawn beside the other tabs.
    pub fn pane_shown(&self) -> bool {
        self.current.is_some() && !self.pane_hidden
    }

    pub fn on_key(&mut self, key: KeyEvent) -> KeyOutcome {
        let op = match key.code {
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(self.catalog.len().saturating_sub(1));
                return KeyOutcome::Nothing;
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                return KeyOutcome::Nothing;
            }
            KeyCode::Enter => match self.catalog.get(self.selected) {
                // The lesson under way goes on where it is; no fresh lab for it.
                Some(l) if self.current.as_ref().is_some_and(|c| c.lesson == l.id) => return KeyOutcome::Nothing,
                Some(l) => LessonOp::Start(l.id.clone()),
                None => return KeyOutcome::Nothing,
            },
            KeyCode::Char('h') => LessonOp::Hint,
            KeyCode::Char('s') => LessonOp::Solution,
            KeyCode::Char('r') => LessonOp::ResetStep,
            KeyCode::Char('R') => LessonOp::ResetLesson,
            KeyCode::Char('x') => LessonOp::Stop,
            _ => return KeyOutcome::Nothing,
        };
        if self.current.is_none() && !matches!(op, LessonOp::Start(_)) {
            return KeyOutcome::Nothing;
        }
        KeyOutcome::Effect(Effect::Lesson(op))
    }
}

pub fn footer(tab: &LessonsTab) -> &'static str {
    if tab.current.is_some() {
        "j/k choose  enter start  h hint  s solution  r reset step  R reset lesson  x leave"
    } else {
        "j/k choose  enter start the lesson (on a fresh lab)"
    }
}

/// The keys that work on every tab while a lesson runs.
pub const PANE_KEYS: &str = "F2 hint  F3 solution  F4 reset step  F8 hide";

/// Tab 6: the lessons at the left, the one under way (or the chosen one) at the right.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let tab = &app.lessons;
    let t = &app.theme;
    let width = tab.catalog.iter().map(|l| l.id.len()).max().unwrap_or(10) as u16 + 14;
    let [list, right] =
        Layout::horizontal([Constraint::Length(width.min(area.width / 2)), Constraint::Fill(1)]).areas(area);
    let mut lines = Vec::new();
    for (i, l) in tab.catalog.iter().enumerate() {
        let progress = if l.finished {
            "done".to_string()
        } else if tab.current.as_ref().is_some_and(|c| c.lesson == l.id) {
            "now".to_string()
        } else if l.passed > 0 {
            format!("{}/{}", l.passed, l.step_titles.len())
        } else {
            String::new()
        };
        let style = if i == tab.selected { t.selected } else { t.text };
        let mark = if l.finished { "✓" } else { " " };
        lines.push(Line::from(vec![
            Span::styled(format!(" {mark} {:<w$} ", l.id, w = width as usize - 12), style),
            Span::styled(format!("{progress:>5} "), if l.finished { t.good } else { t.dim }),
        ]));
    }
    if tab.catalog.is_empty() {
        lines.push(Line::styled(" reading the lessons…", t.dim));
    }
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Lessons ")), list);
    let chosen = tab.catalog.get(tab.selected);
    match (&tab.current, chosen) {
        (Some(current), Some(c)) if c.id != current.lesson => draw_summary(frame, right, t, c, Some(current)),
        (Some(_), _) => draw_pane(frame, right, app),
        (None, Some(c)) => draw_summary(frame, right, t, c, None),
        (None, None) => {}
    }
}

fn draw_summary(frame: &mut Frame, area: Rect, t: &Theme, l: &LessonEntry, current: Option<&StepView>) {
    let mut lines = vec![Line::styled(l.title.clone(), t.title), Line::raw(l.summary.clone()), Line::raw("")];
    lines.push(Line::styled(format!("A fresh lab of {} members; the steps:", l.members), t.dim));
    for (i, s) in l.step_titles.iter().enumerate() {
        let mark = if i < l.passed { "✓" } else { " " };
        lines.push(Line::raw(format!(" {mark} {}. {s}", i + 1)));
    }
    lines.push(Line::raw(""));
    let start = match current {
        Some(c) => format!("enter: leave {} and start this lesson on a fresh lab", c.lesson),
        None => "enter: start this lesson on a fresh lab (this app's lab is replaced)".into(),
    };
    lines.push(Line::styled(start, t.accent));
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::bordered().title(format!(" {} ", l.id))),
        area,
    );
}

/// The lesson under way: the step, what is still missing, the hints revealed, and the
/// explanation of the step that just passed.
pub fn draw_pane(frame: &mut Frame, area: Rect, app: &App) {
    let tab = &app.lessons;
    let t = &app.theme;
    let Some(step) = &tab.current else { return };
    let mut lines: Vec<Line> = Vec::new();
    if let Some(busy) = &tab.busy {
        lines.push(Line::styled(busy.clone(), t.warn));
        lines.push(Line::raw(""));
    }
    if step.finished {
        lines.push(Line::styled("Lesson finished.", t.title));
        lines.push(Line::raw(format!(
            "{} of {} steps solved by you{}.",
            step.solved,
            step.steps,
            if step.shown > 0 { format!(", {} with the solution shown", step.shown) } else { String::new() }
        )));
        lines.push(Line::styled("Tab 6 lists the other lessons; x leaves this one.", t.dim));
    } else {
        lines.push(Line::styled(format!("Step {} of {}: {}", step.number, step.steps, step.title), t.title));
        lines.push(Line::from(vec![Span::styled("Goal: ", t.accent), Span::raw(step.goal.clone())]));
        lines.push(Line::raw(""));
        push_text(&mut lines, &step.text, t.text);
        lines.push(Line::raw(""));
        match step.missing.as_deref() {
            None => lines.push(Line::styled("checking…", t.dim)),
            Some("") => lines.push(Line::styled("✓ done", t.good)),
            Some(missing) => {
                lines.push(Line::from(vec![Span::styled("not yet: ", t.warn), Span::raw(missing.to_string())]))
            }
        }
        for (i, h) in step.hints.iter().enumerate() {
            lines.push(Line::from(vec![
                Span::styled(format!("hint {} of {}: ", i + 1, step.hints_total), t.accent),
                Span::raw(h.clone()),
            ]));
        }
    }
    // The step at hand comes first, so a small pane shows it; what the last step taught
    // follows.
    if let Some(p) = &tab.passed {
        lines.push(Line::raw(""));
        let who = if p.by_learner { "" } else { " (solution shown)" };
        lines.push(Line::styled(format!("✓ step {} passed: {}{who}", p.number, p.title), t.good));
        push_text(&mut lines, &p.explanation, t.text);
    }
    let title = format!(
        " {} · {} ",
        step.lesson_title,
        if step.finished { "done".into() } else { format!("step {} of {}", step.number, step.steps) }
    );
    let keys = if app.tab == crate::tui::app::Tab::Lessons { String::new() } else { format!(" {PANE_KEYS} ") };
    let block = Block::bordered().title(title).title_bottom(Line::styled(keys, t.dim)).border_style(t.accent);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}

/// A lesson's text keeps its paragraphs; lines within one are joined so they wrap to the pane.
fn push_text(lines: &mut Vec<Line<'static>>, text: &str, style: ratatui::style::Style) {
    for (i, paragraph) in text.trim().split("\n\n").enumerate() {
        if i > 0 {
            lines.push(Line::raw(""));
        }
        let joined = paragraph.lines().map(str::trim).collect::<Vec<_>>().join(" ");
        lines.push(Line::styled(joined, style));
    }
}
