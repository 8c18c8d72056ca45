//! Tests of the checks as a whole: hand-written histories with known answers, generated
//! histories of a correct store, and timings.

mod brute_force;
mod builders;
mod global_checks;
mod properties;
mod robustness;
mod scale;
mod scenarios;
mod simulation;
