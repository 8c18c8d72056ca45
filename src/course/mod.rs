//! The course: guided lessons that check what the learner did on the live cluster, the way
//! rustlings checks code.
//!
//! Lessons are data (`lessons/*.toml`, format in `lessons/README.md`); this module reads
//! them (`lesson.rs`), looks at the cluster (`observe.rs`), judges a step's check
//! (`check.rs`: the predicate library, timed checks, values captured at the step's start),
//! keeps the learner's progress (`progress.rs`) and takes a lesson step by step, headless or
//! for `raftty lesson verify` (`session.rs`).
//!
//! Workshop demos (`demo.rs`, data in `lessons/demos/`) reuse the same checks: each step
//! waits for its outcome on the cluster before the presenter can go on.
//!
//! `drill/` is the other half of the course: scored disaster-recovery drills (total loss,
//! quorum loss, a lost member disk, NOSPACE) struck on a busy, backed-up lab and recovered
//! with the real commands.

pub mod check;
pub mod commands;
pub mod demo;
pub mod drill;
pub mod lesson;
pub mod observe;
pub mod progress;
pub mod session;
