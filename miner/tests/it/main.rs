//! Integration tests of the miner: the real server on port 0, real signed requests, and the real
//! `miner` binary as a child process.

mod binary;
mod browser;
mod chain_auth;
mod chain_cmds;
mod concurrent_labelers;
mod finetune;
mod generate;
mod helpers;
mod labels;
mod layout;
mod metrics;
mod model;
mod server;
mod webdriver;
