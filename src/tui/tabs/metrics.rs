//! Tab 5, Metrics: sparklines per member for commits per second, fsync latency, leader
//! changes, database size and memory, read from each member's own metrics endpoint (the
//! same Prometheus text with etcd's names that a real etcd serves).

use std::collections::BTreeMap;
use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::layout::Layout;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Block;
use ratatui::widgets::Paragraph;
use ratatui::widgets::Sparkline;

use crate::tui::app::App;

/// One scrape of a member's counters and gauges.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MetricSample {
    /// Seconds since the app started, when the scrape was taken.
    pub at_secs: f64,
    pub commits_total: f64,
    pub fsync_sum: f64,
    pub fsync_count: f64,
    pub leader_changes: f64,
    pub db_bytes: f64,
    pub rss_bytes: f64,
}

impl MetricSample {
    /// Reads the samples the tab shows from Prometheus text.
    pub fn parse(text: &str, at_secs: f64) -> MetricSample {
        let mut s = MetricSample { at_secs, ..Default::default() };
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else { continue };
            let Ok(v) = value.parse::<f64>() else { continue };
            let bare = name.split('{').next().unwrap_or(name);
            match bare {
                "etcd_server_proposals_committed_total" => s.commits_total = v,
                "etcd_disk_wal_fsync_duration_seconds_sum" => s.fsync_sum = v,
                "etcd_disk_wal_fsync_duration_seconds_count" => s.fsync_count = v,
                "etcd_server_leader_changes_seen_total" => s.leader_changes = v,
                "etcd_mvcc_db_total_size_in_bytes" | "etcd_debugging_mvcc_db_total_size_in_bytes" => s.db_bytes = v,
                "process_resident_memory_bytes" => s.rss_bytes = v,
                _ => {}
            }
        }
        s
    }
}

const KEEP: usize = 120;

/// What is drawn, per member: one series per metric.
#[derive(Debug, Default, Clone)]
pub struct MemberSeries {
    last: Option<MetricSample>,
    pub commits_per_sec: VecDeque<u64>,
    /// Microseconds, so small latencies still show.
    pub fsync_micros: VecDeque<u64>,
    pub leader_changes: VecDeque<u64>,
    pub db_bytes: VecDeque<u64>,
    pub rss_bytes: VecDeque<u64>,
}

fn push(series: &mut VecDeque<u64>, v: f64) {
    if series.len() == KEEP {
        series.pop_front();
    }
    series.push_back(v.max(0.0).round() as u64);
}

#[derive(Debug, Default)]
pub struct MetricsTab {
    pub members: BTreeMap<String, MemberSeries>,
}

impl MetricsTab {
    pub fn push(&mut self, member: &str, s: MetricSample) {
        let m = self.members.entry(member.to_string()).or_default();
        if let Some(prev) = m.last {
            let dt = (s.at_secs - prev.at_secs).max(0.001);
            push(&mut m.commits_per_sec, (s.commits_total - prev.commits_total) / dt);
            let syncs = s.fsync_count - prev.fsync_count;
            let latency = if syncs > 0.0 { (s.fsync_sum - prev.fsync_sum) / syncs * 1e6 } else { 0.0 };
            push(&mut m.fsync_micros, latency);
        }
        push(&mut m.leader_changes, s.leader_changes);
        push(&mut m.db_bytes, s.db_bytes);
        push(&mut m.rss_bytes, s.rss_bytes);
        m.last = Some(s);
    }
}

fn human_bytes(v: u64) -> String {
    match v {
        v if v >= 1 << 30 => format!("{:.1} GiB", v as f64 / (1u64 << 30) as f64),
        v if v >= 1 << 20 => format!("{:.1} MiB", v as f64 / (1u64 << 20) as f64),
        v if v >= 1 << 10 => format!("{:.1} KiB", v as f64 / 1024.0),
        v => format!("{v} B"),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let tab = &app.metrics;
    if tab.members.is_empty() {
        let text = "reading each member's metrics endpoint…";
        frame.render_widget(Paragraph::new(text).style(theme.dim).block(Block::bordered().title(" Metrics ")), area);
        return;
    }
    type Pick = fn(&MemberSeries) -> &VecDeque<u64>;
    type Format = fn(u64) -> String;
    let rows: [(&str, Pick, Format); 5] = [
        ("commits/s", |m| &m.commits_per_sec, |v| format!("{v}/s")),
        ("fsync latency", |m| &m.fsync_micros, |v| format!("{:.2} ms", v as f64 / 1000.0)),
        ("leader changes seen", |m| &m.leader_changes, |v| v.to_string()),
        ("db size", |m| &m.db_bytes, human_bytes),
        ("memory (RSS)", |m| &m.rss_bytes, human_bytes),
    ];
    let areas = Layout::vertical([Constraint::Ratio(1, 5); 5]).split(area);
    for ((title, pick, fmt), row_area) in rows.iter().zip(areas.iter()) {
        let block = Block::bordered().title(format!(" {title} "));
        let inner = block.inner(*row_area);
        frame.render_widget(block, *row_area);
        let n = tab.members.len() as u32;
        let cols = Layout::horizontal(vec![Constraint::Ratio(1, n); n as usize]).split(inner);
        for ((name, series), col) in tab.members.iter().zip(cols.iter()) {
            let data = pick(series);
            let latest = data.back().copied().unwrap_or(0);
            let [label, spark] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(*col);
            frame.render_widget(Paragraph::new(Line::styled(format!("{name} {}", fmt(latest)), theme.title)), label);
            let width = spark.width as usize;
            let shown: Vec<u64> = data.iter().skip(data.len().saturating_sub(width)).copied().collect();
            frame.render_widget(Sparkline::default().data(&shown).style(theme.accent), spark);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_turn_into_rates_and_latencies() {
        let text = "# HELP x\netcd_server_proposals_committed_total 100\n\
                    etcd_disk_wal_fsync_duration_seconds_sum 0.5\netcd_disk_wal_fsync_duration_seconds_count 100\n\
                    etcd_server_leader_changes_seen_total 1\nprocess_resident_memory_bytes 2.5e+07\n";
        let a = MetricSample::parse(text, 0.0);
        assert_eq!(a.commits_total, 100.0);
        assert_eq!(a.rss_bytes, 25_000_000.0);
        let b = MetricSample { at_secs: 2.0, commits_total: 300.0, fsync_sum: 0.7, fsync_count: 200.0, ..a };
        let mut tab = MetricsTab::default();
        tab.push("n1", a);
        tab.push("n1", b);
        let m = &tab.members["n1"];
        assert_eq!(m.commits_per_sec.back(), Some(&100));
        assert_eq!(m.fsync_micros.back(), Some(&2000));
    }
}
