//! The validator: queries miners with btauth/1-signed requests, scores them and sets weights.
//!
//! | module | what |
//! |---|---|
//! | [`db`] | Postgres: epochs, model evaluations, scores, weight commits (SQL lives only here) |
//! | [`cli`] | the command line (clap), every flag also from an env var |
//! | [`query`] | `validator query`: one signed request, an operator's signed curl |
//! | [`eval_cmd`] | `validator eval`: evaluate a local model directory like the model track |
//! | [`export`] | `validator export-preferences`: majority-labelled pairs as a JSONL preference dataset |
//! | [`tracks`] | the scoring tracks: [`tracks::model`] scores models, [`tracks::labels`] scores labelers |
//! | [`web`] | the operator's dashboard: leaderboard, miner history charts, weights, chain; JSON under `/api/` |
//! | [`metrics`] | Prometheus metrics (`validator_*`) and the `record_*` helpers the epoch loop calls |
//! | [`verify`] | `validator verify --epoch N`: recompute a stored epoch's scores and weights |
//! | [`doctor`] | `validator doctor`: wallet, chain, registration, database, disk, device, clock |
//! | [`artifacts`] | fetching miners' model artifacts, verified against their commitment, into a cache |
//! | [`service`] | the epoch loop: clock, schedule, weights math, exactly-once weight submission |
//! | [`startup`] | `validator run`: the epoch loop and the dashboard built from the command line ([`startup::Application`]) |

pub mod artifacts;
pub mod cli;
pub mod db;
pub mod doctor;
pub mod eval_cmd;
pub mod export;
pub mod metrics;
pub mod query;
pub mod service;
pub mod startup;
pub mod tracks;
pub mod verify;
pub mod web;
pub mod workers;
