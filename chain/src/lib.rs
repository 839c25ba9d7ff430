//! The dev chain: a pure state machine that follows Subtensor's rules, and the node around it.
//!
//! | module | what |
//! |---|---|
//! | [`yuma`] | Yuma Consensus (legacy and Yuma 3 bond paths) and the emission split; pure math |
//! | [`state`] | the chain state machine: accounts, subnets, registration, weights, epochs; pure |
//! | [`simulate`] | `devchain simulate`: Yuma Consensus on given inputs through the state machine |
//! | [`block`] | block header, block hash (sha256 of the SCALE header), extrinsics root |
//! | [`store`] | the durable block log: checksummed records, fsync, torn-tail repair |
//! | [`node`] | the node: state + log + pending extrinsics, block production, replay on start |
//! | [`history`] | each subnet's commitments after every block that changed them (reads at a block) |
//! | [`metrics`] | the `devchain_*` Prometheus metrics, served at `GET /metrics` |
//! | [`rpc`] | JSON-RPC 2.0 over HTTP, server-sent events of new heads, `/metrics`, rate limit |
//! | [`startup`] | a node built ([`startup::Application::build`]: block log opened, RPC bound) and run until shutdown |
//! | [`dev`] | the development genesis (`devchain genesis --dev`) |
//! | [`tx`] | helpers of `devchain tx`: TAO amounts, float weights → u16, axon IPs |
//! | [`cli`] | the `devchain` command line; `main.rs` only parses and calls [`cli::run`] |

pub mod block;
pub mod cli;
pub mod dev;
pub mod history;
pub mod metrics;
pub mod node;
pub mod rpc;
pub mod simulate;
pub mod startup;
pub mod state;
pub mod store;
pub mod tx;
pub mod yuma;
