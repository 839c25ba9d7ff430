//! Integration tests of the validator binary.

mod query;
