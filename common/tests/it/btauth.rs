//! btauth integration tests.
