//! Colours, and the monochrome theme for NO_COLOR.
//!
//! Under NO_COLOR no style carries a colour at all (crossterm would drop colours itself,
//! but its colour reset can also wipe bold and reverse), so selection and emphasis rely on
//! modifiers, and roles are told apart by their symbols and words, which every theme shows.

use ratatui::style::Color;
use ratatui::style::Modifier;
use ratatui::style::Style;

use crate::lab::status::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeName {
    Dark,
    Light,
    Mono,
}

impl ThemeName {
    /// NO_COLOR (any non-empty value, as no-color.org says) wins over the chosen theme.
    pub fn from_env(chosen: Option<&str>) -> ThemeName {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return ThemeName::Mono;
        }
        match chosen.or(std::env::var("RAFTTY_THEME").ok().as_deref()) {
            Some("light") => ThemeName::Light,
            Some("mono") => ThemeName::Mono,
            _ => ThemeName::Dark,
        }
    }

    pub fn parse(s: &str) -> Option<ThemeName> {
        match s {
            "dark" => Some(ThemeName::Dark),
            "light" => Some(ThemeName::Light),
            "mono" | "none" => Some(ThemeName::Mono),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub name: ThemeName,
    pub text: Style,
    pub dim: Style,
    pub title: Style,
    pub accent: Style,
    pub selected: Style,
    pub good: Style,
    pub warn: Style,
    pub bad: Style,
    pub leader: Style,
    pub follower: Style,
    pub candidate: Style,
    pub learner: Style,
    pub uncommitted: Style,
    pub overwritten: Style,
    pub tab_active: Style,
}

impl Theme {
    pub fn new(name: ThemeName) -> Theme {
        let plain = Style::default();
        let bold = plain.add_modifier(Modifier::BOLD);
        match name {
            ThemeName::Mono => Theme {
                name,
                text: plain,
                dim: plain,
                title: bold,
                accent: bold,
                selected: plain.add_modifier(Modifier::REVERSED),
                good: plain,
                warn: bold,
                bad: bold,
                leader: bold,
                follower: plain,
                candidate: plain.add_modifier(Modifier::UNDERLINED),
                learner: plain,
                uncommitted: plain.add_modifier(Modifier::ITALIC),
                overwritten: plain.add_modifier(Modifier::CROSSED_OUT),
                tab_active: plain.add_modifier(Modifier::REVERSED | Modifier::BOLD),
            },
            ThemeName::Dark | ThemeName::Light => {
                let dark = name == ThemeName::Dark;
                let fg = if dark { Color::Gray } else { Color::Black };
                let dim = if dark { Color::DarkGray } else { Color::Gray };
                Theme {
                    name,
                    text: plain.fg(fg),
                    dim: plain.fg(dim),
                    title: bold.fg(if dark { Color::White } else { Color::Black }),
                    accent: plain.fg(if dark { Color::Cyan } else { Color::Blue }),
                    selected: plain.bg(if dark { Color::Rgb(40, 60, 90) } else { Color::Rgb(200, 220, 250) }).fg(fg),
                    good: plain.fg(Color::Green),
                    warn: bold.fg(if dark { Color::Yellow } else { Color::Rgb(150, 100, 0) }),
                    bad: bold.fg(Color::Red),
                    leader: bold.fg(if dark { Color::Yellow } else { Color::Rgb(170, 110, 0) }),
                    follower: plain.fg(if dark { Color::Green } else { Color::Rgb(0, 120, 0) }),
                    candidate: bold.fg(Color::Magenta),
                    learner: plain.fg(if dark { Color::Cyan } else { Color::Blue }),
                    uncommitted: plain.fg(dim).add_modifier(Modifier::ITALIC),
                    overwritten: plain.fg(Color::Red).add_modifier(Modifier::CROSSED_OUT),
                    tab_active: bold.fg(Color::Black).bg(if dark { Color::Cyan } else { Color::Blue }),
                }
            }
        }
    }

    pub fn role(&self, role: Option<Role>) -> Style {
        match role {
            Some(Role::Leader) => self.leader,
            Some(Role::Follower) => self.follower,
            Some(Role::Candidate) => self.candidate,
            Some(Role::Learner) => self.learner,
            None => self.dim,
        }
    }
}

/// The symbol of a role, so roles differ without colour too.
pub fn role_symbol(role: Option<Role>) -> &'static str {
    match role {
        Some(Role::Leader) => "★",
        Some(Role::Follower) => "●",
        Some(Role::Candidate) => "◎",
        Some(Role::Learner) => "○",
        None => "✗",
    }
}
