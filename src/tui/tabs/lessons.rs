//! Tab 6, Lessons: reserved for the guided lessons, which arrive as data files under
//! `lessons/` with checks against the live cluster. Until then it says what is coming.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Block;
use ratatui::widgets::Paragraph;
use ratatui::widgets::Wrap;

use crate::tui::app::App;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let lines = vec![
        Line::styled("Lessons are coming here.", theme.title),
        Line::raw(""),
        Line::raw("Guided lessons on quorum, leader election, log replication, backup and restore, each"),
        Line::raw("checked against this live cluster after every step, with hints and a solution."),
        Line::raw(""),
        Line::styled("Meanwhile, try these on the Cluster tab (1):", theme.accent),
        Line::raw("  :kill <leader>        and watch a new leader get elected"),
        Line::raw("  :partition n1|n2,n3   and see which side can still commit"),
        Line::raw("  :load 100             and watch replication in the Raft log tab (3)"),
        Line::raw("  :heal                 to bring everyone back together"),
    ];
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::bordered().title(" Lessons ")),
        area,
    );
}
