//! Talking to a chain: call and query types shared with the dev chain, and the client trait.

pub mod types;
