//! Integration tests of `subnet-common`: golden vectors from the bittensor 11.3.0 SDK and
//! interop with the real SDK through Python.

mod btauth;
mod keys;
mod support;
mod wallet;
