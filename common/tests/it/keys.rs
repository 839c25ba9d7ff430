//! keys integration tests.
