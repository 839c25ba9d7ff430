//! Integration tests of the validator binary.

mod artifacts;
mod dashboard;
mod eval_cli;
mod model_track;
mod query;
