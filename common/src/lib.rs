//! Shared core of the subnet: everything the miner, validator and dev chain agree on.
//!
//! | module | what |
//! |---|---|
//! | [`keys`] | sr25519 keys, Substrate URIs and mnemonics, SS58 addresses |
//! | [`wallet`] | the bittensor wallet layout and keyfiles (plain and `$NACL`-encrypted) |
//! | [`btauth`] | btauth/1 signed HTTP requests: reqwest signer, axum verifier, nonce store |
//! | [`protocol`] | request and response types of every miner HTTP route, the model manifest |
//! | [`chain`] | chain call and query types, the `ChainClient` trait and the dev-chain client |
//! | [`telemetry`] | tracing subscriber set-up (pretty or JSON) |
//! | [`timelock`] | commit–reveal v4 payloads: weights encrypted to a beacon round; a beacon of one's own |
//! | [`serve`] | the public servers' accept loop: header-read timeout, connection caps, fd limit |
//!
//! No burn and no sqlx here: this crate must stay cheap to build.

pub mod btauth;
pub mod chain;
pub mod cli;
pub mod keys;
pub mod protocol;
pub mod serve;
pub mod telemetry;
pub mod timelock;
pub mod wallet;
