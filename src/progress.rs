//! What long work (snapshot save, restore, backup, recover) tells whoever watches it. The
//! work only calls a `FnMut(Progress)`; the command line draws it with indicatif, the app in
//! its backups view.

use std::time::Duration;

use indicatif::ProgressBar;
use indicatif::ProgressStyle;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A new stage begins, in words.
    Step(String),
    /// How far the current stage is.
    Amount { done: u64, total: u64, unit: Unit },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Revisions,
    Entries,
}

impl Progress {
    pub fn step(text: impl Into<String>) -> Progress {
        Progress::Step(text.into())
    }

    /// One line for a status bar: `writing 100000 revisions into n2` or `53% (5.3 MB of 10 MB)`.
    pub fn describe(&self) -> String {
        match self {
            Progress::Step(s) => s.clone(),
            Progress::Amount { done, total, unit } => {
                let percent = if *total == 0 { 100 } else { done.saturating_mul(100) / total };
                match unit {
                    Unit::Bytes => format!("{percent}% ({} of {})", human_bytes(*done), human_bytes(*total)),
                    Unit::Revisions => format!("{percent}% ({done} of {total} revisions)"),
                    Unit::Entries => format!("{percent}% ({done} of {total} log entries)"),
                }
            }
        }
    }

    /// The fraction done, for a gauge; None for a step.
    pub fn ratio(&self) -> Option<f64> {
        match self {
            Progress::Step(_) => None,
            Progress::Amount { done, total, .. } => {
                Some(if *total == 0 { 1.0 } else { (*done as f64 / *total as f64).min(1.0) })
            }
        }
    }
}

pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000_000 => format!("{:.1} GB", b as f64 / 1e9),
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1000 => format!("{:.0} kB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

/// Progress on a terminal: steps as lines on stderr, amounts as a bar under them. indicatif
/// draws nothing when stderr is not a terminal, so scripts and tests see the steps alone.
#[derive(Default)]
pub struct Terminal {
    bar: Option<ProgressBar>,
}

impl Terminal {
    pub fn report(&mut self, progress: Progress) {
        match progress {
            Progress::Step(text) => {
                self.finish();
                eprintln!("{text}");
            }
            Progress::Amount { done, total, unit } => {
                let bar = self.bar.get_or_insert_with(|| {
                    let template = match unit {
                        Unit::Bytes => "  [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec})",
                        Unit::Revisions => "  [{bar:40}] {pos}/{len} revisions",
                        Unit::Entries => "  [{bar:40}] {pos}/{len} log entries",
                    };
                    let bar = ProgressBar::new(total);
                    bar.set_style(
                        ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> "),
                    );
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bar
                });
                bar.set_length(total);
                bar.set_position(done);
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_people_say_them() {
        let p = Progress::Amount { done: 5_300_000, total: 10_000_000, unit: Unit::Bytes };
        assert_eq!(p.describe(), "53% (5.3 MB of 10.0 MB)");
        assert_eq!(p.ratio(), Some(0.53));
        let p = Progress::Amount { done: 3, total: 4, unit: Unit::Entries };
        assert_eq!(p.describe(), "75% (3 of 4 log entries)");
        assert_eq!(Progress::step("x").ratio(), None);
        assert_eq!(Progress::Amount { done: 0, total: 0, unit: Unit::Revisions }.ratio(), Some(1.0));
    }
}
