//! Tab 7, Backups: the lab's backups and the revisions each can restore, the long work on
//! them (snapshot save, restore, continuous backup, quorum-loss recovery) with its progress,
//! and the keys that start it. The work itself runs in `tui/io/backups.rs`.

use std::time::Instant;

use crossterm::event::KeyCode;
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::layout::Layout;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::text::Span;
use ratatui::widgets::Block;
use ratatui::widgets::Gauge;
use ratatui::widgets::Paragraph;

use crate::backup::catalog::Entry;
use crate::backup::catalog::Kind;
use crate::progress::Progress;
use crate::tui::app::App;
use crate::tui::app::Effect;

/// Work on backups the app can ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum BackupOp {
    /// Look at the backups again.
    Refresh,
    /// A snapshot from the leader, into FILE or the lab's backup folder.
    SnapshotSave {
        file: Option<String>,
    },
    /// Replace this lab by the one a backup holds, keeping its certificates.
    Restore {
        source: String,
        to_revision: Option<i64>,
    },
    /// Continuous backup, into DIR or the lab's backup folder, while the app runs.
    BackupStart {
        dir: Option<String>,
    },
    BackupStop,
    /// Rebuild the cluster around a surviving member.
    Recover {
        member: String,
        force: bool,
    },
}

impl BackupOp {
    pub fn describe(&self) -> String {
        match self {
            BackupOp::Refresh => "refresh backups".into(),
            BackupOp::SnapshotSave { file } => match file {
                Some(f) => format!("snapshot save {f}"),
                None => "snapshot save".into(),
            },
            BackupOp::Restore { source, to_revision } => match to_revision {
                Some(r) => format!("restore {source} --to-revision {r}"),
                None => format!("restore {source}"),
            },
            BackupOp::BackupStart { dir } => match dir {
                Some(d) => format!("backup {d}"),
                None => "backup".into(),
            },
            BackupOp::BackupStop => "backup stop".into(),
            BackupOp::Recover { member, force } => {
                format!("recover {member}{}", if *force { " --force" } else { "" })
            }
        }
    }

    /// Whether it needs a lab (all but a snapshot, which any etcd gives).
    pub fn needs_lab(&self) -> bool {
        !matches!(self, BackupOp::SnapshotSave { .. })
    }
}

/// Long work in progress: what it is, how far, since when.
#[derive(Debug, Clone, PartialEq)]
pub struct Work {
    pub title: String,
    pub progress: Progress,
    pub since: Instant,
}

#[derive(Debug, Clone, Default)]
pub struct BackupsTab {
    pub entries: Vec<Entry>,
    pub selected: usize,
    /// The lab's backup folder, to say where new backups go.
    pub folder: Option<String>,
    pub work: Option<Work>,
    /// The continuous backup this app runs, and its last word.
    pub running: Option<String>,
}

impl BackupsTab {
    pub fn listed(&mut self, entries: Vec<Entry>, folder: Option<String>) {
        self.entries = entries;
        self.folder = folder;
        self.selected = self.selected.min(self.entries.len().saturating_sub(1));
    }

    pub fn selected_entry(&self) -> Option<&Entry> {
        self.entries.get(self.selected)
    }

    /// What a key does on this tab: effects, or a command line to prefill.
    pub fn on_key(&mut self, key: KeyEvent) -> KeyOutcome {
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(self.entries.len().saturating_sub(1));
            }
            KeyCode::Char('s') => return KeyOutcome::Effect(Effect::Backup(BackupOp::SnapshotSave { file: None })),
            KeyCode::Char('b') if self.running.is_some() => {
                return KeyOutcome::Effect(Effect::Backup(BackupOp::BackupStop));
            }
            KeyCode::Char('b') => return KeyOutcome::Effect(Effect::Backup(BackupOp::BackupStart { dir: None })),
            KeyCode::Char('g') | KeyCode::F(5) => return KeyOutcome::Effect(Effect::Backup(BackupOp::Refresh)),
            KeyCode::Char('r') | KeyCode::Enter => {
                if let Some(e) = self.selected_entry().filter(|e| e.problem.is_none()) {
                    let source = e.path.display().to_string();
                    return KeyOutcome::Effect(Effect::Backup(BackupOp::Restore { source, to_revision: None }));
                }
            }
            KeyCode::Char('t') => {
                if let Some(e) = self.selected_entry().filter(|e| e.problem.is_none()) {
                    return KeyOutcome::Prefill(format!("restore {} --to-revision ", e.path.display()));
                }
            }
            _ => {}
        }
        KeyOutcome::Nothing
    }
}

pub enum KeyOutcome {
    Nothing,
    Effect(Effect),
    Prefill(String),
}

pub fn footer(tab: &BackupsTab) -> &'static str {
    if tab.running.is_some() {
        "s snapshot now · b stop the backup · r restore selected · t to a revision · :recover NAME"
    } else {
        "s snapshot now · b start a continuous backup · r restore selected · t to a revision · :recover NAME"
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let tab = &app.backups;
    let status_height = 1 + u16::from(tab.work.is_some()) * 2 + u16::from(tab.running.is_some());
    let [status_area, list_area] =
        Layout::vertical([Constraint::Length(status_height + 2), Constraint::Min(3)]).areas(area);

    let block = Block::bordered().title(" Backups ");
    let inner = block.inner(status_area);
    frame.render_widget(block, status_area);
    let mut rows = Vec::new();
    let folder = tab.folder.as_deref().unwrap_or("(attached: snapshots only)");
    rows.push(Line::from(vec![Span::styled("new backups go to ", theme.dim), Span::raw(folder.to_string())]));
    if let Some(line) = &tab.running {
        rows.push(Line::from(vec![Span::styled("continuous backup: ", theme.accent), Span::raw(line.clone())]));
    }
    let text_rows = rows.len() as u16;
    frame.render_widget(Paragraph::new(rows), Rect { height: text_rows.min(inner.height), ..inner });
    if let Some(work) = &tab.work {
        let elapsed = app.now.saturating_duration_since(work.since).as_secs();
        let y = inner.y + text_rows;
        if y < inner.y + inner.height {
            let title = Line::from(vec![
                Span::styled(format!("{} ", work.title), theme.title),
                Span::styled(format!("({elapsed} s) "), theme.dim),
                Span::raw(work.progress.describe()),
            ]);
            frame.render_widget(Paragraph::new(title), Rect { y, height: 1, ..inner });
        }
        if let Some(ratio) = work.progress.ratio()
            && y + 1 < inner.y + inner.height
        {
            let gauge = Gauge::default().gauge_style(theme.accent).ratio(ratio).label("");
            frame.render_widget(gauge, Rect { y: y + 1, height: 1, ..inner });
        }
    }

    let mut lines = vec![Line::styled(
        format!("  {:<10}  {:<20}  {:>8}  {:<20}  {}", "KIND", "REVISIONS", "SIZE", "TAKEN", "WHERE"),
        theme.dim,
    )];
    if tab.entries.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::raw("  No backups yet. Press s for a snapshot of the cluster as it is now, or b to keep"));
        lines.push(Line::raw(
            "  a continuous backup that can restore any revision it saw (:restore DIR --to-revision R).",
        ));
    }
    // The list, then a line about the selected backup: its full path, or what is wrong.
    let visible = list_area.height.saturating_sub(5) as usize;
    let first = tab.selected.saturating_sub(visible.saturating_sub(1));
    let folder = tab.folder.as_deref().map(std::path::Path::new);
    for (i, e) in tab.entries.iter().enumerate().skip(first).take(visible) {
        let kind = match e.kind {
            Kind::Snapshot => "snapshot",
            Kind::Continuous => "continuous",
        };
        let taken =
            e.modified.map(|m| humantime::format_rfc3339_seconds(m).to_string().replace('T', " ")).unwrap_or_default();
        let taken = taken.trim_end_matches('Z').to_string();
        let revisions = match &e.problem {
            Some(_) => "cannot be restored".to_string(),
            None if e.first == e.last => format!("{}", e.last),
            None => format!("{} to {}", e.first, e.last),
        };
        let place = match folder.and_then(|f| e.path.strip_prefix(f).ok()) {
            Some(inside) => inside.display().to_string(),
            None => e.path.display().to_string(),
        };
        let mark = if i == tab.selected { "> " } else { "  " };
        let text = format!(
            "{mark}{kind:<10}  {revisions:<20}  {:>8}  {taken:<20}  {place}",
            crate::progress::human_bytes(e.bytes)
        );
        let style = match (i == tab.selected, e.problem.is_some()) {
            (true, _) => theme.selected,
            (false, true) => theme.bad,
            (false, false) => theme.text,
        };
        lines.push(Line::styled(text, style));
    }
    if let Some(e) = tab.selected_entry() {
        while lines.len() < visible + 2 {
            lines.push(Line::raw(""));
        }
        let about = match &e.problem {
            Some(why) => Line::styled(format!("  {}: {why}", e.path.display()), theme.bad),
            None => Line::styled(
                format!("  {}  (r restores it in place of this lab, t to a revision of it)", e.path.display()),
                theme.dim,
            ),
        };
        lines.push(about);
    }
    frame.render_widget(Paragraph::new(lines).block(Block::bordered()), list_area);
}
