//! Integration tests: the real `devchain` binary on loopback, and the node built in-process as it
//! builds it (`startup`), driven through the [`DevChainClient`](subnet_common::chain::DevChainClient).

mod support;

mod cli;
mod durability;
mod metrics;
mod rpc;
mod startup;
