//! Tab 1, Cluster: the members (role, process, indexes, lag, faults), a picture of the
//! network with a partition editor, and the latest events. The keys here act on the
//! selected member; none of them is a navigation key.

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

use crate::lab::faults::Slowness;
use crate::tui::app::App;
use crate::tui::app::ClusterView;
use crate::tui::app::Effect;
use crate::tui::app::LabOp;
use crate::tui::app::MemberView;
use crate::tui::app::Proc;
use crate::tui::tabs::events;
use crate::tui::theme::Theme;
use crate::tui::theme::role_symbol;

#[derive(Debug, Default)]
pub struct ClusterTab {
    pub selected: usize,
    /// The partition being put together: a group number per member, in member order.
    pub editor: Option<Vec<usize>>,
}

const GROUPS: usize = 3;

impl ClusterTab {
    pub fn clamp(&mut self, members: usize) {
        self.selected = self.selected.min(members.saturating_sub(1));
        if let Some(groups) = &mut self.editor {
            groups.resize(members, 0);
        }
    }

    pub fn selected_name(&self, names: &[String]) -> Option<String> {
        names.get(self.selected).cloned()
    }

    pub fn click(&mut self, row: usize, members: usize) {
        // The table's border and heading take two rows.
        if row >= 2 && row - 2 < members {
            self.selected = row - 2;
        }
    }

    pub fn on_key(&mut self, key: KeyEvent, names: &[String], selected: Option<String>) -> Vec<Effect> {
        let n = names.len();
        if let Some(groups) = &mut self.editor {
            match key.code {
                KeyCode::Down | KeyCode::Char('j') => self.selected = (self.selected + 1).min(n.saturating_sub(1)),
                KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
                KeyCode::Right | KeyCode::Char('l') | KeyCode::Char(' ') => {
                    if let Some(g) = groups.get_mut(self.selected) {
                        *g = (*g + 1) % GROUPS;
                    }
                }
                KeyCode::Left | KeyCode::Char('h') => {
                    if let Some(g) = groups.get_mut(self.selected) {
                        *g = (*g + GROUPS - 1) % GROUPS;
                    }
                }
                KeyCode::Enter => {
                    let mut split: Vec<Vec<String>> = vec![vec![]; GROUPS];
                    for (name, g) in names.iter().zip(groups.iter()) {
                        split[*g].push(name.clone());
                    }
                    split.retain(|g| !g.is_empty());
                    self.editor = None;
                    if split.len() < 2 {
                        return vec![Effect::Lab(LabOp::Heal)];
                    }
                    return vec![Effect::Lab(LabOp::Partition(split))];
                }
                KeyCode::Esc => self.editor = None,
                _ => {}
            }
            return vec![];
        }
        let on = |op: fn(String) -> LabOp| selected.clone().map(|m| Effect::Lab(op(m))).into_iter().collect();
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(n.saturating_sub(1));
                vec![]
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                vec![]
            }
            KeyCode::Char('K') => on(LabOp::Kill),
            KeyCode::Char('S') => on(LabOp::Stop),
            KeyCode::Char('P') => on(LabOp::Pause),
            KeyCode::Char('R') => on(LabOp::Resume),
            KeyCode::Char('T') => on(LabOp::Start),
            KeyCode::Char('I') => on(LabOp::Isolate),
            KeyCode::Char('D') => on(LabOp::MemberRemove),
            KeyCode::Char('W') => on(|m| LabOp::Slow(m, Slowness { delay_ms: 200, jitter_ms: 50, loss_percent: 0.0 })),
            KeyCode::Char('A') => vec![Effect::Lab(LabOp::MemberAdd)],
            KeyCode::Char('H') => vec![Effect::Lab(LabOp::Heal)],
            KeyCode::Char('p') => {
                self.editor = Some(vec![0; n]);
                vec![]
            }
            _ => vec![],
        }
    }
}

/// The keys of this tab, for the footer.
pub fn footer(tab: &ClusterTab) -> &'static str {
    if tab.editor.is_some() {
        "j/k member  ←/→ or space: move to group A/B/C  enter apply  esc cancel"
    } else {
        "j/k select  K kill  S stop  P/R pause/resume  T start  I isolate  W slow  p partition  H heal  A add  D remove"
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let Some(cluster) = &app.cluster else {
        let text = app.starting.clone().unwrap_or_else(|| "looking at the cluster…".into());
        frame.render_widget(Paragraph::new(text).style(theme.dim).block(Block::bordered().title(" Members ")), area);
        return;
    };
    let table_height = cluster.members.len() as u16 + 3;
    let [top, bottom] = Layout::vertical([Constraint::Length(table_height), Constraint::Min(3)]).areas(area);
    draw_members(frame, top, cluster, &app.cluster_tab, theme);
    let [net, feed] = Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(bottom);
    draw_network(frame, net, cluster, &app.cluster_tab, theme);
    events::draw_feed(frame, feed, app);
}

pub fn process_style(theme: &Theme, p: Proc) -> ratatui::style::Style {
    match p {
        Proc::Running => theme.text,
        Proc::Paused => theme.warn,
        Proc::Killed | Proc::Exited | Proc::Unreachable => theme.bad,
    }
}

fn member_faults(cluster: &ClusterView, m: &MemberView) -> String {
    let mut out = Vec::new();
    let names: Vec<&String> = cluster.members.iter().map(|x| &x.name).collect();
    let cut_to: Vec<&str> =
        names.iter().filter(|o| **o != &m.name && cluster.faults.is_cut(&m.name, o)).map(|s| s.as_str()).collect();
    let cut_from: Vec<&str> =
        names.iter().filter(|o| **o != &m.name && cluster.faults.is_cut(o, &m.name)).map(|s| s.as_str()).collect();
    if !cut_to.is_empty() && cut_to.len() + 1 == names.len() && cut_from.len() == cut_to.len() {
        out.push("isolated".to_string());
    } else {
        if !cut_to.is_empty() {
            out.push(format!("→{} lost", cut_to.join(",")));
        }
        if !cut_from.is_empty() {
            out.push(format!("←{} lost", cut_from.join(",")));
        }
    }
    if let Some(s) = cluster.faults.slow.get(&m.name) {
        out.push(format!("slow {}ms", s.delay_ms));
    }
    out.join(" ")
}

fn draw_members(frame: &mut Frame, area: Rect, cluster: &ClusterView, tab: &ClusterTab, theme: &Theme) {
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let mut lines = vec![Line::styled(
        format!(
            "  {:<5} {:<11} {:<8} {:>5} {:>7} {:>7} {:>7} {:>5}  {}",
            "NAME", "ROLE", "PROCESS", "TERM", "LAST", "COMMIT", "APPLIED", "LAG", "NETWORK"
        ),
        theme.dim,
    )];
    for (i, m) in cluster.members.iter().enumerate() {
        let role = m.role.map(|r| r.to_string()).unwrap_or_else(|| "-".into());
        let editor_group = tab.editor.as_ref().and_then(|g| g.get(i)).map(|g| ["A", "B", "C"][*g]);
        let marker = if i == tab.selected { "▶ " } else { "  " };
        let mut spans = vec![
            Span::raw(marker),
            Span::styled(format!("{:<5} ", m.name), theme.title),
            Span::styled(format!("{} {:<9} ", role_symbol(m.role), role), theme.role(m.role)),
            Span::styled(format!("{:<8} ", m.process.to_string()), process_style(theme, m.process)),
            Span::raw(format!(
                "{:>5} {:>7} {:>7} {:>7} ",
                opt(m.term),
                opt(m.last_index),
                opt(m.committed),
                opt(m.applied)
            )),
            Span::styled(format!("{:>5}  ", opt(m.lag)), if m.lag.unwrap_or(0) > 0 { theme.warn } else { theme.text }),
            Span::styled(member_faults(cluster, m), theme.warn),
        ];
        if let Some(g) = editor_group {
            spans.push(Span::styled(format!("  group {g}"), theme.accent));
        }
        if let Some(e) = &m.error {
            spans.push(Span::styled(format!("  {e}"), theme.dim));
        }
        let mut line = Line::from(spans);
        if i == tab.selected {
            line = line.style(theme.selected);
        }
        lines.push(line);
    }
    let title = if tab.editor.is_some() { " Members: partition editor " } else { " Members " };
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(title)), area);
}

/// One row per pair of members: the link drawn healthy, slow, or cut in one or both ways.
pub fn link_lines<'a>(cluster: &ClusterView, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    let members = &cluster.members;
    for (i, a) in members.iter().enumerate() {
        for b in members.iter().skip(i + 1) {
            let ab = cluster.faults.is_cut(&a.name, &b.name);
            let ba = cluster.faults.is_cut(&b.name, &a.name);
            let slow =
                [&a.name, &b.name].iter().filter_map(|n| cluster.faults.slow.get(*n)).map(|s| s.delay_ms).sum::<u32>();
            let down = |m: &MemberView| m.process != Proc::Running;
            let (wire, words, style) = match (ab, ba) {
                (true, true) => ("──╳╳──", "cut both ways".to_string(), theme.bad),
                (true, false) => ("───╳▶─", format!("{} → {} lost", a.name, b.name), theme.bad),
                (false, true) => ("─◀╳───", format!("{} → {} lost", b.name, a.name), theme.bad),
                _ if slow > 0 => ("~~~~~~", format!("slow +{slow}ms"), theme.warn),
                _ if down(a) || down(b) => ("┄┄┄┄┄┄", "a member is down".to_string(), theme.dim),
                _ => ("──────", "healthy".to_string(), theme.good),
            };
            lines.push(Line::from(vec![
                Span::styled(format!(" {:>3} ", a.name), theme.role(a.role)),
                Span::styled(wire, style),
                Span::styled(format!(" {:<3} ", b.name), theme.role(b.role)),
                Span::styled(words, style),
            ]));
        }
    }
    lines
}

fn draw_network(frame: &mut Frame, area: Rect, cluster: &ClusterView, tab: &ClusterTab, theme: &Theme) {
    let mut lines = link_lines(cluster, theme);
    if let Some(groups) = &tab.editor {
        lines.push(Line::raw(""));
        for (g, label) in ["A", "B", "C"].iter().enumerate() {
            let names: Vec<&str> =
                cluster.members.iter().zip(groups).filter(|(_, x)| **x == g).map(|(m, _)| m.name.as_str()).collect();
            lines.push(Line::styled(format!(" group {label}: {}", names.join(", ")), theme.accent));
        }
    } else if let Some(groups) =
        cluster.faults.partition_groups(&cluster.members.iter().map(|m| m.name.clone()).collect::<Vec<_>>())
    {
        lines.push(Line::raw(""));
        let named: Vec<String> = groups.iter().map(|g| g.join(",")).collect();
        lines.push(Line::styled(format!(" islands: {}", named.join("  ┃  ")), theme.warn));
    }
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Network ")), area);
}
