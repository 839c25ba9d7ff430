//! Integration tests of the validator binary.

mod artifacts;
mod dashboard;
mod dashboard_browser;
mod db;
mod doctor;
mod doctor_chain;
mod epoch;
mod eval_cli;
mod labels;
mod localnet;
mod model_track;
mod pg;
mod query;
mod run_cli;
mod run_loop;
mod subtensor;
mod verify;
#[path = "../../../miner/tests/it/webdriver.rs"]
mod webdriver;
mod workers;
