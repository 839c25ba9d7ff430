//! The subtensor crate against the bittensor SDK and its recorded chain data.

mod client;
mod parity;
mod reads;
mod testnode;
mod timelock;
