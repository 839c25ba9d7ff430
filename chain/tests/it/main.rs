//! Integration tests: the real `devchain` binary on loopback, driven through the
//! [`DevChainClient`](subnet_common::chain::DevChainClient).

mod support;

mod cli;
mod durability;
mod rpc;
