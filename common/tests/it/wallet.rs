//! wallet integration tests.
