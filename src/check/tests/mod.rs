//! Tests of the checks as a whole: hand-written histories with known answers, generated
//! histories of a correct store, and timings.

mod brute_force;
mod builders;
mod global_checks;
mod performance;
mod properties;
mod robustness;
mod scenarios;
mod simulation;
