//! Integration tests of the validator binary.

mod artifacts;
mod query;
