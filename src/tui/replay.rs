//! Replay: the app on a lab's recording, read-only. Where the replay stands and how the keys
//! move it; the I/O layer (`io/replay.rs`) answers each move with the cluster as it was.

use crossterm::event::KeyCode;
use crossterm::event::KeyEvent;
use crossterm::event::KeyModifiers;
use ratatui::text::Span;

use crate::tui::theme::Theme;

/// How far shift-← and shift-→ jump.
pub const JUMP_MICROS: i64 = 5_000_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The recorded moments worth stopping at, in order (microseconds since the epoch).
    pub moments: Vec<i64>,
    /// Where the replay stands.
    pub at: i64,
}

impl Replay {
    pub fn new(moments: Vec<i64>, at: i64) -> Replay {
        let mut r = Replay { moments, at };
        r.at = r.clamp(at);
        r
    }

    pub fn start(&self) -> i64 {
        self.moments.first().copied().unwrap_or(self.at)
    }

    pub fn end(&self) -> i64 {
        self.moments.last().copied().unwrap_or(self.at)
    }

    fn clamp(&self, t: i64) -> i64 {
        t.clamp(self.start(), self.end())
    }

    /// The moment a key moves to, if it is one of replay's keys: ← and → step from one
    /// recorded moment to the next, shift-← and shift-→ jump by seconds, home and end.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<i64> {
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        let to = match key.code {
            KeyCode::Right if shift => self.at + JUMP_MICROS,
            KeyCode::Left if shift => self.at - JUMP_MICROS,
            KeyCode::Right => {
                let next = self.moments.partition_point(|m| *m <= self.at);
                *self.moments.get(next)?
            }
            KeyCode::Left => {
                let before = self.moments.partition_point(|m| *m < self.at);
                *self.moments.get(before.checked_sub(1)?)?
            }
            KeyCode::Home => self.start(),
            KeyCode::End => self.end(),
            _ => return None,
        };
        self.at = self.clamp(to);
        Some(self.at)
    }

    /// Which recorded moment this is, counting from 1, and how many there are.
    pub fn position(&self) -> (usize, usize) {
        (self.moments.partition_point(|m| *m <= self.at), self.moments.len())
    }

    /// The slider: the time, a bar with a knob where the replay stands, and the offset.
    pub fn slider(&self, width: usize, theme: &Theme) -> Vec<Span<'static>> {
        let span = (self.end() - self.start()).max(1);
        let offset = self.at - self.start();
        let clock = crate::tui::app::EventView::lab_at(self.at, "", String::new()).clock();
        let bar_width = width.saturating_sub(80).clamp(10, 40);
        let knob = ((offset as f64 / span as f64) * (bar_width - 1) as f64).round() as usize;
        let bar: String = (0..bar_width)
            .map(|i| {
                if i == knob {
                    '●'
                } else if i < knob {
                    '━'
                } else {
                    '─'
                }
            })
            .collect();
        let (n, of) = self.position();
        vec![
            Span::styled("REPLAY ", theme.warn),
            Span::raw(format!("{clock} ")),
            Span::styled(bar, theme.accent),
            Span::raw(format!(" +{:.1}s of {:.1}s  moment {n}/{of}", offset as f64 / 1e6, span as f64 / 1e6)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn arrows_step_through_moments_and_shift_jumps_by_seconds() {
        let mut r = Replay::new(vec![1_000_000, 2_000_000, 9_000_000, 20_000_000], 0);
        assert_eq!(r.at, 1_000_000, "a moment before the recording starts is its start");
        assert_eq!(r.on_key(key(KeyCode::Right, KeyModifiers::NONE)), Some(2_000_000));
        assert_eq!(r.on_key(key(KeyCode::Right, KeyModifiers::NONE)), Some(9_000_000));
        assert_eq!(r.on_key(key(KeyCode::Left, KeyModifiers::NONE)), Some(2_000_000));
        assert_eq!(r.on_key(key(KeyCode::Right, KeyModifiers::SHIFT)), Some(7_000_000));
        assert_eq!(r.on_key(key(KeyCode::Left, KeyModifiers::NONE)), Some(2_000_000), "back to the moment before");
        assert_eq!(r.on_key(key(KeyCode::End, KeyModifiers::NONE)), Some(20_000_000));
        assert_eq!(r.on_key(key(KeyCode::Right, KeyModifiers::NONE)), None, "nothing after the last moment");
        assert_eq!(r.on_key(key(KeyCode::Right, KeyModifiers::SHIFT)), Some(20_000_000), "never past the end");
        assert_eq!(r.position(), (4, 4));
        assert_eq!(r.on_key(key(KeyCode::Char('x'), KeyModifiers::NONE)), None);
    }
}
