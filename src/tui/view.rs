//! Drawing: the header with the cluster at a glance (on every tab), the tab bar, the current
//! tab, the footer with the keys that work here, and the popups. Reads the state only.

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::layout::Flex;
use ratatui::layout::Layout;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::text::Span;
use ratatui::widgets::Block;
use ratatui::widgets::Clear;
use ratatui::widgets::Paragraph;
use ratatui::widgets::Wrap;

use crate::lab::status::Quorum;
use crate::tui::app::App;
use crate::tui::app::Mode;
use crate::tui::app::Tab;
use crate::tui::app::Target;
use crate::tui::tabs;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// The header takes two rows, the tab bar the third.
pub const TAB_ROW: u16 = 2;
const BODY_TOP: u16 = 3;

pub fn body_area((w, h): (u16, u16)) -> Rect {
    Rect { x: 0, y: BODY_TOP, width: w, height: h.saturating_sub(BODY_TOP + 1) }
}

/// The narrowest terminal that gets the lesson pane at the side; below it, the pane goes
/// under the tab, so tables keep their columns.
const SIDE_PANE_FROM: u16 = 116;
/// What the tabs need to keep every column (the member table is the widest).
const TAB_WIDTH: u16 = 80;

/// Where the current tab is drawn, and the lesson pane beside it while a lesson runs.
pub fn tab_and_pane(app: &App) -> (Rect, Option<Rect>) {
    let body = body_area(app.size);
    if !app.lessons.pane_shown() || app.tab == Tab::Lessons {
        return (body, None);
    }
    if body.width >= SIDE_PANE_FROM {
        let width = body.width.saturating_sub(TAB_WIDTH).clamp(36, 60);
        let tab = Rect { width: body.width - width, ..body };
        (tab, Some(Rect { x: body.x + tab.width, width, ..body }))
    } else {
        let height = (body.height / 2).min(12);
        let tab = Rect { height: body.height - height, ..body };
        (tab, Some(Rect { y: body.y + tab.height, height, ..body }))
    }
}

/// A tab's label in the tab bar: padded when the whole bar fits in `width` so, tight when not.
fn tab_label(i: usize, tab: Tab, width: u16) -> String {
    let padded_width: usize =
        Tab::ALL.iter().enumerate().map(|(i, t)| format!(" {} {} ", i + 1, t.title()).len() + 1).sum();
    if padded_width <= width as usize + 1 {
        format!(" {} {} ", i + 1, tab.title())
    } else {
        format!("{} {}", i + 1, tab.title())
    }
}

/// The tab under column `x` of the tab bar.
pub fn tab_at(x: u16, width: u16) -> Option<Tab> {
    let mut start = 0u16;
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let len = tab_label(i, *tab, width).chars().count() as u16;
        if x >= start && x < start + len {
            return Some(*tab);
        }
        start += len + 1;
    }
    None
}

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "raftty needs a terminal of at least {MIN_WIDTH}x{MIN_HEIGHT}.\nThis one is {}x{}: please enlarge it.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }).style(app.theme.warn), area);
        return;
    }
    if app.demo.as_ref().is_some_and(|d| !d.hidden) {
        crate::tui::presentation::draw(frame, area, app);
        draw_popups(frame, area, app);
        return;
    }
    draw_header(frame, Rect { x: 0, y: 0, width: area.width, height: 2 }, app);
    draw_tabs(frame, Rect { x: 0, y: TAB_ROW, width: area.width, height: 1 }, app);
    let (body, pane) = tab_and_pane(app);
    match app.tab {
        Tab::Cluster => tabs::cluster::draw(frame, body, app),
        Tab::Keys => tabs::keys::draw(frame, body, app),
        Tab::RaftLog => tabs::raft_log::draw(frame, body, app),
        Tab::Events => tabs::events::draw(frame, body, app),
        Tab::Metrics => tabs::metrics::draw(frame, body, app),
        Tab::Lessons => tabs::lessons::draw(frame, body, app),
        Tab::Backups => tabs::backups::draw(frame, body, app),
        Tab::Messages => tabs::messages::draw(frame, body, app),
    }
    if let Some(pane) = pane {
        tabs::lessons::draw_pane(frame, pane, app);
    }
    if let Some(out) = &app.output {
        draw_output(frame, body, app, out);
    }
    draw_footer(frame, Rect { x: 0, y: area.height - 1, width: area.width, height: 1 }, app);
    draw_popups(frame, area, app);
}

fn draw_popups(frame: &mut Frame, area: Rect, app: &App) {
    match &app.mode {
        Mode::Help => draw_help(frame, area, app),
        Mode::Confirm { question, .. } => {
            draw_popup(frame, area, app, " Are you sure? ", std::slice::from_ref(question))
        }
        Mode::Quit => {
            let lines = match &app.target {
                Target::Lab { name, .. } => vec![
                    format!("Leave raftty. What about lab {name}?"),
                    String::new(),
                    "  s  stop the lab (its members shut down; data is kept)".into(),
                    "  l  leave it running (etcdctl keeps working)".into(),
                    "  esc  stay".into(),
                ],
                Target::Attached { .. } => {
                    vec!["Leave raftty?".into(), String::new(), "  y  leave    esc  stay".into()]
                }
            };
            draw_popup(frame, area, app, " Quit ", &lines);
        }
        _ => {}
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let (name, tempo) = match &app.target {
        Target::Lab { name, tempo } => {
            let tempo = app.cluster.as_ref().and_then(|c| c.tempo).unwrap_or(*tempo);
            let tempo = match tempo {
                crate::lab::Tempo::ETCD => "etcd (100ms/1s)".to_string(),
                crate::lab::Tempo::SLOW => "slow (1s/10s)".to_string(),
                other => format!("{}ms/{}ms", other.heartbeat_ms, other.election_timeout_ms),
            };
            (format!("lab {name}"), Some(tempo))
        }
        Target::Attached { endpoints } => (format!("attached to {}", endpoints.join(",")), None),
    };
    let mut first = vec![Span::styled(" raftty ", t.tab_active), Span::styled(format!(" {name} "), t.title)];
    let mut second = vec![Span::raw(" ")];
    if let Some(replay) = &app.replay {
        second.extend(replay.slider(area.width as usize, t));
        second.push(Span::styled(" · ", t.dim));
    } else if let Some(user) = &app.acting_as {
        second.push(Span::styled("as ", t.dim));
        second.push(Span::raw(user.clone()));
        second.push(Span::styled(" · ", t.dim));
    }
    match &app.cluster {
        None => first.push(Span::styled(app.starting.clone().unwrap_or_else(|| "connecting…".into()), t.dim)),
        Some(c) => {
            let style = match c.quorum {
                Quorum::Healthy => t.good,
                Quorum::Degraded { .. } => t.warn,
                Quorum::Lost { .. } => t.bad,
            };
            first.push(Span::styled(format!(" {} ", c.quorum), style));
            first.push(Span::styled(" leader ", t.dim));
            first.push(Span::styled(c.leader.clone().unwrap_or_else(|| "none".into()), t.leader));
            first.push(Span::styled("  term ", t.dim));
            first.push(Span::raw(c.term.map(|v| v.to_string()).unwrap_or_else(|| "-".into())));
            first.push(Span::styled("  rev ", t.dim));
            first.push(Span::raw(c.revision.map(|v| v.to_string()).unwrap_or_else(|| "-".into())));
            if c.faults_in_words.is_empty() {
                second.push(Span::styled("no network faults", t.dim));
            } else {
                second.push(Span::styled("faults: ", t.dim));
                second.push(Span::styled(c.faults_in_words.join("; "), t.bad));
            }
            if !c.alarms.is_empty() {
                second.push(Span::styled("   ALARM: ", t.bad));
                second.push(Span::styled(c.alarms.join(", "), t.bad));
            }
        }
    }
    if let Some(tempo) = tempo {
        first.push(Span::styled("  tempo ", t.dim));
        first.push(Span::raw(tempo));
    }
    if let Some(load) = &app.load {
        second.push(Span::styled("   load ", t.dim));
        second.push(Span::styled(
            format!(
                "{}/s asked, {:.0}/s done, p50 {:.1} ms, p99 {:.1} ms, {} errors",
                load.target_per_sec, load.done_per_sec, load.p50_ms, load.p99_ms, load.errors
            ),
            t.accent,
        ));
    }
    frame.render_widget(Paragraph::new(vec![Line::from(first), Line::from(second)]), area);
}

fn draw_tabs(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let mut spans = Vec::new();
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let style = if *tab == app.tab { t.tab_active } else { t.dim };
        spans.push(Span::styled(tab_label(i, *tab, area.width), style));
        spans.push(Span::raw(" "));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let line = match &app.mode {
        Mode::Command | Mode::Filter => {
            let lead = if app.mode == Mode::Command { ":" } else { "/" };
            let mut spans = vec![Span::styled(lead, t.accent), Span::raw(app.command.text().to_string())];
            if !app.command.candidates.is_empty() {
                spans.push(Span::styled(format!("   {}", app.command.candidates.join("  ")), t.dim));
            }
            let x = area.x + 1 + app.command.cursor() as u16;
            frame.set_cursor_position((x.min(area.width.saturating_sub(1)), area.y));
            Line::from(spans)
        }
        _ => match &app.message {
            Some((text, ok, _)) => Line::styled(format!(" {text}"), if *ok { t.accent } else { t.bad }),
            None => {
                let keys = match app.tab {
                    Tab::Cluster => tabs::cluster::footer(&app.cluster_tab).to_string(),
                    Tab::Keys => tabs::keys::footer(&app.keys).to_string(),
                    Tab::RaftLog => tabs::raft_log::footer(&app.log).to_string(),
                    Tab::Events => tabs::events::footer(&app.events),
                    Tab::Backups => tabs::backups::footer(&app.backups).to_string(),
                    Tab::Lessons => tabs::lessons::footer(&app.lessons).to_string(),
                    Tab::Messages => {
                        tabs::messages::footer(&app.messages, app.cluster.as_ref().and_then(|c| c.faults.step))
                            .to_string()
                    }
                    Tab::Metrics => String::new(),
                };
                let keys = if app.replay.is_some() {
                    // The tab's own keys mostly act on a live cluster; replay's come first.
                    format!("←/→ moment  shift-←/→ 5 s  home/end  {keys}")
                } else {
                    keys
                };
                let out = if app.output.is_some() { "esc close output  " } else { "" };
                // The way to the help always shows, at the right; the tab's keys get the rest.
                let help = " ? help  : command  q quit ";
                let room = (area.width as usize).saturating_sub(help.chars().count() + 1);
                let mut text = format!(" {out}{keys}");
                if text.chars().count() > room {
                    text = text.chars().take(room.saturating_sub(1)).collect::<String>() + "…";
                }
                let pad = room.saturating_sub(text.chars().count());
                Line::from(vec![Span::styled(text, t.text), Span::raw(" ".repeat(pad + 1)), Span::styled(help, t.dim)])
            }
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_output(frame: &mut Frame, body: Rect, app: &App, out: &crate::tui::app::Output) {
    let height = (out.lines.len() as u16 + 2).clamp(3, body.height / 2 + 2);
    let area = Rect { x: body.x, y: body.y + body.height - height, width: body.width, height };
    let inner = height.saturating_sub(2) as usize;
    let end = out.lines.len().saturating_sub(out.scroll);
    let start = end.saturating_sub(inner);
    let lines: Vec<Line> = out.lines[start..end].iter().map(|l| Line::raw(l.clone())).collect();
    let style = if out.ok { app.theme.accent } else { app.theme.bad };
    frame.render_widget(Clear, area);
    let title = format!(" {} (esc closes) ", out.title);
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(title).border_style(style)), area);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))]).flex(Flex::Center).areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))]).flex(Flex::Center).areas(v);
    h
}

fn draw_popup(frame: &mut Frame, area: Rect, app: &App, title: &str, lines: &[String]) {
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(20) as u16 + 4;
    let popup = centered(area, width.max(30), lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let text: Vec<Line> = lines.iter().map(|l| Line::raw(l.clone())).collect();
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(title.to_string()).border_style(app.theme.warn)),
        popup,
    );
}

/// Every key and command, grouped the way k9s and lazygit group theirs.
pub const HELP: &[(&str, &str)] = &[
    ("1-8, tab, shift-tab", "switch tabs (or click them)"),
    (":", "command line: etcdctl commands and the lab's (tab completes, up recalls)"),
    ("/", "filter keys (Keys) or events (Events)"),
    ("?", "this help"),
    ("q", "quit: stop the lab or leave it running"),
    ("j/k, arrows", "move; they never touch a member"),
    ("Cluster: K S P R T", "kill, stop, pause, resume, start the selected member"),
    ("Cluster: I W", "isolate the member, make its links slow"),
    ("Cluster: p, H", "partition editor; heal every fault"),
    ("Cluster: A, D", "add a member; remove the selected one (asks)"),
    ("Keys: enter h l", "open and close prefixes"),
    ("Keys: n e d", "new key, edit the value, delete (asks)"),
    ("Keys: v , .", "history of the key, step through its versions"),
    ("Keys: [ ] =", "the tree at an older / newer revision / now"),
    ("Raft log: j/k g G", "scroll back, first entry, follow the tail"),
    ("Events: space m f", "pause, filter by member, by kind"),
    (":put K V  :get K [--prefix] [--rev N]", "as etcdctl"),
    (":del K [--prefix]  :watch K [--prefix]", "as etcdctl; the watch streams below"),
    (":txn value(\"k\") = \"v\" then put k w else get k", "a transaction"),
    (":compact REV  :member list  :endpoint status", "as etcdctl"),
    (":snapshot save FILE  :snapshot status FILE", "an etcd snapshot from the leader, and what one holds"),
    (":kill :stop :pause :resume :start NAME", "the lab's process controls"),
    (":partition n1|n2,n3  :cut A B  :slow N 200ms  :heal", "network faults"),
    (":member add  :member remove N  :tempo slow", "membership and timing"),
    (":load 200  :load off", "a load generator, puts per second"),
    (":theme dark|light|mono", "colours (NO_COLOR is honoured)"),
    ("Lessons: enter, x", "start the chosen lesson on a fresh lab; leave the one under way"),
    ("F2 F3 F4, F8", "while a lesson runs, on any tab: hint, play the solution, reset the step; hide the pane"),
    (":lesson ID  :hint  :solution  :reset [lesson]", "the same from the command line"),
    ("Messages: s h", "step mode on/off: hold every Raft message; let heartbeats flow or wait"),
    ("Messages: enter d l a", "deliver the selected message, drop it, deliver its link, deliver all"),
    (":step on [--auto-heartbeats]  :step deliver|drop ID  :step off", "the same from the command line"),
    ("raftty replay: ← → shift-← shift-→ home end", "a recording: moment by moment, 5 s jumps, start and end"),
];

fn draw_help(frame: &mut Frame, area: Rect, app: &App) {
    let width = area.width.saturating_sub(4).min(110);
    let popup = centered(area, width, (HELP.len() as u16 + 2).min(area.height));
    frame.render_widget(Clear, popup);
    let key_width = HELP.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(10);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![Span::styled(format!(" {k:<key_width$}  "), app.theme.accent), Span::raw(what.to_string())])
        })
        .collect();
    let room = popup.height.saturating_sub(2);
    let scroll = app.help_scroll.min((lines.len() as u16).saturating_sub(room));
    let hint = if lines.len() as u16 > room { " j/k scroll · esc or ? closes " } else { " esc or ? closes " };
    let block = Block::bordered().title(" Help ").title_bottom(Line::styled(hint, app.theme.dim));
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)).block(block), popup);
}
