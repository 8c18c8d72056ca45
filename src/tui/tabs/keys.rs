//! Tab 2, Keys: the keyspace as a tree kept live by Watch, the selected key's value (JSON
//! pretty-printed, else text, else hex) with its revisions, version and lease countdown,
//! its full history with a diff between versions, and the whole tree as it stood at an
//! earlier revision, down to the compaction floor.

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
use ratatui::widgets::Paragraph;
use ratatui::widgets::Wrap;

use crate::lab::supervisor::shell_quote;
use crate::tui::app::App;
use crate::tui::app::Effect;
use crate::tui::command::EtcdOp;
use crate::tui::keyspace::KeyMeta;
use crate::tui::keyspace::Keyspace;
use crate::tui::keyspace::Row;
use crate::tui::theme::Theme;

/// A key as Range returned it, with its lease's time to live.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyDetail {
    pub key: String,
    /// None when the key does not exist (at that revision).
    pub value: Option<Vec<u8>>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
    /// Seconds the lease had left when it was asked, and when that was.
    pub lease_ttl: Option<i64>,
    pub lease_granted_ttl: i64,
    pub fetched_at: Option<Instant>,
    pub at_revision: Option<i64>,
}

/// One version of a key in its history.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyVersion {
    pub revision: i64,
    pub deleted: bool,
    pub value: Vec<u8>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub key: String,
    /// Oldest first.
    pub versions: Vec<KeyVersion>,
    pub selected: usize,
    pub floor: i64,
}

#[derive(Debug, Default)]
pub struct KeysTab {
    pub space: Keyspace,
    pub selected: usize,
    pub scroll: usize,
    /// Rows that fit in the tree pane (set from the terminal size).
    pub page: usize,
    /// The newest revision seen.
    pub revision: i64,
    /// The revision shown, when travelling in time; None shows the live tree.
    pub at: Option<i64>,
    /// The compaction floor: no revision below it can be shown.
    pub floor: i64,
    pub loaded: bool,
    pub detail: Option<KeyDetail>,
    pub history: Option<History>,
    pub show_history: bool,
    prefill: Option<String>,
    confirm: Option<(String, Effect)>,
}

/// How a value is best shown.
pub fn render_value(value: &[u8]) -> (&'static str, Vec<String>) {
    if let Ok(text) = std::str::from_utf8(value) {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(text)
            && (json.is_object() || json.is_array())
        {
            let pretty = serde_json::to_string_pretty(&json).unwrap_or_default();
            return ("json", pretty.lines().map(str::to_string).collect());
        }
        if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return ("text", text.lines().map(str::to_string).collect());
        }
    }
    let lines = value
        .chunks(16)
        .enumerate()
        .map(|(i, chunk)| {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let ascii: String = chunk.iter().map(|b| if b.is_ascii_graphic() { *b as char } else { '.' }).collect();
            format!("{:08x}  {:<48} {ascii}", i * 16, hex.join(" "))
        })
        .collect();
    ("binary", lines)
}

impl KeysTab {
    pub fn take_prefill(&mut self) -> Option<String> {
        self.prefill.take()
    }

    pub fn take_confirm(&mut self) -> Option<(String, Effect)> {
        self.confirm.take()
    }

    pub fn set_filter(&mut self, text: &str) {
        self.space.set_filter(text);
        self.selected = 0;
        self.scroll = 0;
    }

    pub fn completion_keys(&self) -> Vec<String> {
        self.space.keys()
    }

    fn selected_row(&self) -> Option<&Row> {
        self.space.cached_rows().get(self.selected)
    }

    /// The rows the app must flatten before the next frame.
    pub fn prepare(&mut self) {
        self.space.refresh();
        let n = self.space.cached_rows().len();
        self.selected = self.selected.min(n.saturating_sub(1));
        let page = self.page.max(1);
        if self.selected < self.scroll {
            self.scroll = self.selected;
        } else if self.selected >= self.scroll + page {
            self.scroll = self.selected + 1 - page;
        }
    }

    pub fn loaded(&mut self, keys: Vec<(String, KeyMeta)>, revision: i64, at: Option<i64>, floor: i64) -> Vec<Effect> {
        let selected = self.selected_row().map(|r| r.path.clone());
        self.space.clear();
        for (k, meta) in keys {
            self.space.put(&k, meta);
        }
        if at.is_none() {
            self.revision = self.revision.max(revision);
        }
        self.at = at;
        self.floor = self.floor.max(floor);
        self.loaded = true;
        self.space.refresh();
        if let Some(path) = selected
            && let Some(i) = self.space.cached_rows().iter().position(|r| r.path == path)
        {
            self.selected = i;
        }
        self.fetch_selected()
    }

    pub fn put(&mut self, key: &str, meta: KeyMeta, revision: i64) {
        self.revision = self.revision.max(revision);
        if self.at.is_none() {
            self.space.put(key, meta);
        }
    }

    pub fn delete(&mut self, key: &str, revision: i64) {
        self.revision = self.revision.max(revision);
        if self.at.is_none() {
            self.space.delete(key);
        }
    }

    /// A watched change to the key on show: read it again (and its history, if open).
    pub fn refresh_if_selected(&mut self, key: &str) -> Vec<Effect> {
        if self.at.is_some() || self.detail.as_ref().is_none_or(|d| d.key != key) {
            return vec![];
        }
        let mut effects = vec![Effect::FetchKey { key: key.to_string(), revision: None }];
        if self.show_history {
            effects.push(Effect::FetchHistory { key: key.to_string() });
        }
        effects
    }

    pub fn detail_arrived(&mut self, mut d: KeyDetail, now: Instant) {
        d.fetched_at = Some(now);
        self.detail = Some(d);
    }

    pub fn history_arrived(&mut self, key: String, versions: Vec<KeyVersion>, floor: i64) {
        let selected = versions.len().saturating_sub(1);
        self.floor = self.floor.max(floor);
        self.history = Some(History { key, versions, selected, floor });
    }

    fn fetch_selected(&mut self) -> Vec<Effect> {
        match self.selected_row() {
            Some(row) if row.is_key => {
                let key = row.path.clone();
                let mut effects = vec![Effect::FetchKey { key: key.clone(), revision: self.at }];
                if self.show_history {
                    effects.push(Effect::FetchHistory { key });
                }
                effects
            }
            _ => {
                self.detail = None;
                vec![]
            }
        }
    }

    fn travel(&mut self, to: Option<i64>) -> Vec<Effect> {
        let to = to.filter(|r| *r < self.revision).map(|r| r.max(self.floor.max(1)));
        if to.is_none() && self.at.is_none() {
            return vec![];
        }
        // Even the same revision is read again: the floor may have risen since (a compaction).
        self.at = to;
        vec![Effect::LoadKeys { revision: to }]
    }

    pub fn click(&mut self, row: usize) -> Vec<Effect> {
        self.space.refresh();
        // One row of border above the tree.
        if row >= 1 && self.scroll + row - 1 < self.space.cached_rows().len() {
            self.selected = self.scroll + row - 1;
            return self.fetch_selected();
        }
        vec![]
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        // Keys arrive faster than frames: the rows must reflect the previous key's change.
        self.space.refresh();
        let n = self.space.cached_rows().len();
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(n.saturating_sub(1));
                self.fetch_selected()
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                self.fetch_selected()
            }
            KeyCode::PageDown => {
                self.selected = (self.selected + self.page.max(1)).min(n.saturating_sub(1));
                self.fetch_selected()
            }
            KeyCode::PageUp => {
                self.selected = self.selected.saturating_sub(self.page.max(1));
                self.fetch_selected()
            }
            KeyCode::Home | KeyCode::Char('g') => {
                self.selected = 0;
                self.fetch_selected()
            }
            KeyCode::End | KeyCode::Char('G') => {
                self.selected = n.saturating_sub(1);
                self.fetch_selected()
            }
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => {
                if let Some(row) = self.selected_row().cloned() {
                    if row.has_children && !row.expanded {
                        self.space.set_expanded(&row.path, true);
                    } else if row.has_children && key.code == KeyCode::Enter {
                        self.space.set_expanded(&row.path, false);
                    }
                }
                self.fetch_selected()
            }
            KeyCode::Left | KeyCode::Char('h') => {
                if let Some(row) = self.selected_row().cloned() {
                    if row.expanded {
                        self.space.set_expanded(&row.path, false);
                    } else if let Some(parent) =
                        self.space.cached_rows()[..self.selected].iter().rposition(|r| r.depth + 1 == row.depth)
                    {
                        self.selected = parent;
                    }
                }
                self.fetch_selected()
            }
            KeyCode::Char('v') => {
                self.show_history = !self.show_history;
                if !self.show_history {
                    self.history = None;
                    return vec![];
                }
                self.fetch_selected()
            }
            KeyCode::Char(',') => {
                if let Some(h) = &mut self.history {
                    h.selected = h.selected.saturating_sub(1);
                }
                vec![]
            }
            KeyCode::Char('.') => {
                if let Some(h) = &mut self.history {
                    h.selected = (h.selected + 1).min(h.versions.len().saturating_sub(1));
                }
                vec![]
            }
            KeyCode::Char('[') => {
                let from = self.at.unwrap_or(self.revision);
                self.travel(Some(from - 1))
            }
            KeyCode::Char(']') => match self.at {
                Some(at) if at + 1 < self.revision => self.travel(Some(at + 1)),
                Some(_) => self.travel(None),
                None => vec![],
            },
            KeyCode::Char('=') => self.travel(None),
            KeyCode::Char('n') => {
                let prefix = match self.selected_row() {
                    Some(r) if r.has_children && !r.is_key => r.path.clone(),
                    Some(r) => r.path[..r.path.len() - r.label().len()].to_string(),
                    None => String::new(),
                };
                self.prefill = Some(format!("put {prefix}"));
                vec![]
            }
            KeyCode::Char('e') => {
                if let Some(d) = &self.detail
                    && let Some(value) = &d.value
                {
                    let text = String::from_utf8_lossy(value);
                    self.prefill = Some(format!("put {} {}", shell_quote(&d.key), shell_quote(&text)));
                }
                vec![]
            }
            KeyCode::Char('d') | KeyCode::Delete => {
                if let Some(row) = self.selected_row().cloned() {
                    let (question, effect) = if row.is_key && !row.has_children {
                        (
                            format!("delete {}? (y/n)", row.path),
                            Effect::Etcd(EtcdOp::Del { key: row.path.clone(), prefix: false }),
                        )
                    } else {
                        (
                            format!("delete the {} keys under {}? (y/n)", row.count, row.path),
                            Effect::Etcd(EtcdOp::Del { key: row.path.clone(), prefix: true }),
                        )
                    };
                    self.confirm = Some((question, effect));
                }
                vec![]
            }
            _ => vec![],
        }
    }
}

pub fn footer(tab: &KeysTab) -> &'static str {
    if tab.at.is_some() {
        "[ older  ] newer  = back to now  j/k move  enter open  v history"
    } else if tab.show_history {
        "j/k key  , . older/newer version  v close history  e edit  d delete  [ travel back"
    } else {
        "j/k move  enter/l open  h close  / filter  n new  e edit  d delete  v history  [ ] revisions"
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let tab = &app.keys;
    let theme = &app.theme;
    let [tree, right] = Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area);
    draw_tree(frame, tree, tab, theme);
    if tab.show_history {
        let [detail, history] = Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(right);
        draw_detail(frame, detail, app);
        draw_history(frame, history, tab, theme);
    } else {
        draw_detail(frame, right, app);
    }
}

fn draw_tree(frame: &mut Frame, area: Rect, tab: &KeysTab, theme: &Theme) {
    let rows = tab.space.cached_rows();
    let height = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = rows
        .iter()
        .enumerate()
        .skip(tab.scroll)
        .take(height)
        .map(|(i, r)| {
            let indent = "  ".repeat(r.depth);
            let mark = if r.has_children { if r.expanded { "▾ " } else { "▸ " } } else { "  " };
            let mut spans = vec![Span::raw(format!("{indent}{mark}")), Span::styled(r.label().to_string(), theme.text)];
            if r.has_children {
                spans.push(Span::styled(format!("  ({})", r.count), theme.dim));
            }
            let line = Line::from(spans);
            if i == tab.selected { line.style(theme.selected) } else { line }
        })
        .collect();
    let when = match tab.at {
        Some(at) => format!("at revision {at} (compaction floor {})", tab.floor),
        None => format!("live, revision {}", tab.revision),
    };
    let title = format!(" Keys: {} {when} ", tab.space.len());
    let mut block = Block::bordered().title(title);
    if !tab.space.filter().is_empty() {
        block = block.title_bottom(format!(" filter: {} ", tab.space.filter()));
    }
    let body: Vec<Line> = if !tab.loaded {
        vec![Line::styled("reading the keyspace…", theme.dim)]
    } else if rows.is_empty() && tab.at.is_some() {
        vec![Line::styled("no keys at this revision", theme.dim)]
    } else if rows.is_empty() {
        vec![Line::styled("no keys yet: press n, or type :put /hello world", theme.dim)]
    } else {
        lines
    };
    frame.render_widget(Paragraph::new(body).block(block), area);
}

fn draw_detail(frame: &mut Frame, area: Rect, app: &App) {
    let tab = &app.keys;
    let theme = &app.theme;
    let Some(d) = &tab.detail else {
        let hint = "select a key to see its value";
        frame.render_widget(Paragraph::new(hint).style(theme.dim).block(Block::bordered().title(" Value ")), area);
        return;
    };
    let mut lines = Vec::new();
    let Some(value) = &d.value else {
        let text = format!("{} does not exist at this revision", d.key);
        frame.render_widget(Paragraph::new(text).style(theme.dim).block(Block::bordered().title(" Value ")), area);
        return;
    };
    lines.push(Line::from(vec![
        Span::styled("create ", theme.dim),
        Span::raw(d.create_revision.to_string()),
        Span::styled("  mod ", theme.dim),
        Span::raw(d.mod_revision.to_string()),
        Span::styled("  version ", theme.dim),
        Span::raw(d.version.to_string()),
    ]));
    if d.lease != 0 {
        let left = match (d.lease_ttl, d.fetched_at) {
            (Some(ttl), Some(at)) => {
                let gone = app.now.saturating_duration_since(at).as_secs() as i64;
                let left = (ttl - gone).max(0);
                format!("{left}s left of {}s", d.lease_granted_ttl)
            }
            _ => "expired".to_string(),
        };
        lines.push(Line::from(vec![
            Span::styled("lease ", theme.dim),
            Span::raw(format!("{:x}", d.lease)),
            Span::styled("  TTL ", theme.dim),
            Span::styled(left, theme.warn),
        ]));
    }
    let (kind, body) = render_value(value);
    lines.push(Line::styled(format!("{kind}, {} bytes", value.len()), theme.dim));
    lines.extend(body.into_iter().map(Line::raw));
    let title = format!(" {} ", d.key);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::bordered().title(title)), area);
}

fn draw_history(frame: &mut Frame, area: Rect, tab: &KeysTab, theme: &Theme) {
    let Some(h) = &tab.history else {
        frame.render_widget(
            Paragraph::new("reading history…").style(theme.dim).block(Block::bordered().title(" History ")),
            area,
        );
        return;
    };
    let [list, diff] = Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
    let lines: Vec<Line> = h
        .versions
        .iter()
        .enumerate()
        .rev()
        .map(|(i, v)| {
            let what = if v.deleted {
                "deleted".to_string()
            } else {
                let text = String::from_utf8_lossy(&v.value);
                let short: String = text.chars().take(24).collect();
                format!("v{} {short}", v.version)
            };
            let line = Line::from(vec![
                Span::styled(format!("rev {:<6} ", v.revision), theme.dim),
                Span::styled(what, if v.deleted { theme.bad } else { theme.text }),
            ]);
            if i == h.selected { line.style(theme.selected) } else { line }
        })
        .collect();
    let title = format!(" {} versions ", h.versions.len());
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(title)), list);
    let diff_lines = diff_of(h, theme);
    frame.render_widget(
        Paragraph::new(diff_lines).block(Block::bordered().title(" Change from the version before ")),
        diff,
    );
}

fn diff_of<'a>(h: &History, theme: &Theme) -> Vec<Line<'a>> {
    let Some(new) = h.versions.get(h.selected) else { return vec![] };
    let old = h.selected.checked_sub(1).and_then(|i| h.versions.get(i));
    let text = |v: Option<&KeyVersion>| match v {
        Some(v) if !v.deleted => render_value(&v.value).1.join("\n") + "\n",
        _ => String::new(),
    };
    let (a, b) = (text(old), text(Some(new)));
    let diff = similar::TextDiff::from_lines(&a, &b);
    diff.iter_all_changes()
        .map(|c| {
            let (sign, style) = match c.tag() {
                similar::ChangeTag::Delete => ("-", theme.bad),
                similar::ChangeTag::Insert => ("+", theme.good),
                similar::ChangeTag::Equal => (" ", theme.dim),
            };
            Line::styled(format!("{sign} {}", c.value().trim_end_matches('\n')), style)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_show_as_json_text_or_hex() {
        let (kind, lines) = render_value(br#"{"replicas":3,"image":"nginx"}"#);
        assert_eq!(kind, "json");
        assert_eq!(lines[1], "  \"image\": \"nginx\",");
        assert_eq!(render_value(b"hello\nworld"), ("text", vec!["hello".to_string(), "world".to_string()]));
        let (kind, lines) = render_value(&[0, 159, 146, 150]);
        assert_eq!(kind, "binary");
        assert!(lines[0].starts_with("00000000  00 9f 92 96"), "{}", lines[0]);
    }
}
