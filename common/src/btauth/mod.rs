//! btauth/1: hotkey-signed HTTP requests (`spec/btauth.md`), byte-compatible with
//! `bittensor.http_auth` of the bittensor 11.3.0 Python SDK.
//!
//! A request proves "sent by hotkey X, to hotkey Y, with exactly this body, recently" with six
//! headers. The sender signs a newline-joined payload ([`build_payload`]) with its sr25519 hotkey;
//! the receiver rebuilds the payload from what it received and checks, in the SDK's order,
//! header shape, receiver binding, freshness, the signature and replay ([`Verifier::verify`]).
//!
//! | submodule | what |
//! |---|---|
//! | [`error`] | [`AuthError`] and its stable JSON codes ([`AuthErrorKind`]) |
//! | [`verify`] | [`Verifier`]: the five checks, with time as an argument |
//! | [`nonce`] | [`NonceStore`]: bounded, sharded replay memory |
//! | [`sign`] | [`sign_headers`], [`next_nonce_ns`] and the reqwest [`SignedClient`] |
//! | [`server`] | the axum middleware [`require`], [`Guard`], [`Authorize`] and [`VerifiedCaller`] |
//!
//! Client side:
//! ```no_run
//! # async fn example(miner: subnet_common::keys::AccountId) -> Result<(), reqwest::Error> {
//! use subnet_common::btauth::SignedClient;
//! use subnet_common::keys::Keypair;
//! let hotkey = Keypair::from_uri("//Alice").expect("dev key");
//! let client = SignedClient::new(reqwest::Client::new(), hotkey);
//! let url = reqwest::Url::parse("http://127.0.0.1:8091/v1/generate").expect("url");
//! let response = client
//!     .request(reqwest::Method::POST, url, &miner, br#"{"prompt":"hi"}"#.to_vec())
//!     .header("content-type", "application/json")
//!     .send()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Server side:
//! ```no_run
//! use axum::{Router, routing::get, middleware::from_fn_with_state};
//! use subnet_common::btauth::{self, Guard, Verifier, VerifiedCaller};
//! # fn app(my_hotkey: subnet_common::keys::AccountId) -> Router {
//! let guard = Guard::new(Verifier::new(my_hotkey));
//! Router::new()
//!     .route("/v1/whoami", get(|VerifiedCaller(who): VerifiedCaller| async move { who.to_ss58() }))
//!     .route_layer(from_fn_with_state(guard, btauth::require))
//! # }
//! ```

pub mod error;
pub mod nonce;
pub mod server;
pub mod sign;
pub mod verify;

use std::time::Duration;

use sha2::{Digest, Sha256};

pub use error::{AuthError, AuthErrorKind};
pub use nonce::{NonceRejection, NonceStore};
pub use server::{
    AllowAnySigner, Authorize, DEFAULT_BODY_LIMIT, Forbidden, Guard, VerifiedCaller, require,
};
pub use sign::{SignedClient, next_nonce_ns, request_target, sign_headers};
pub use verify::{Caller, Verifier, VerifierConfig};

/// First line of every signed payload.
pub const PROTOCOL: &str = "btauth/1";
/// Value of the [`HEADER_VERSION`] header.
pub const VERSION: &str = "1";
/// The only signature scheme this implementation signs and verifies.
pub const SCHEME_SR25519: &str = "sr25519";
/// Payload line standing for "no receiver" (refused by verifiers that require a receiver).
pub const NO_RECEIVER: &str = "-";

/// Protocol version header, always [`VERSION`].
pub const HEADER_VERSION: &str = "X-Bittensor-Version";
/// Sender hotkey, SS58.
pub const HEADER_HOTKEY: &str = "X-Bittensor-Hotkey";
/// Receiver hotkey, SS58.
pub const HEADER_RECEIVER: &str = "X-Bittensor-Receiver";
/// Decimal nanoseconds since the Unix epoch, fresh per request.
pub const HEADER_NONCE: &str = "X-Bittensor-Nonce";
/// Signature scheme; absent means `sr25519`.
pub const HEADER_CRYPTO: &str = "X-Bittensor-Crypto";
/// `0x` + hex of the 64-byte signature.
pub const HEADER_SIGNATURE: &str = "X-Bittensor-Signature";

/// How old a nonce may be (the SDK's `DEFAULT_MAX_AGE`).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(10);
/// How far in the future a nonce may be, for clock drift (the SDK's `DEFAULT_ALLOWED_SKEW`).
pub const DEFAULT_ALLOWED_SKEW: Duration = Duration::from_secs(2);

/// The exact bytes that are signed: the normative btauth/1 payload (sr25519 scheme).
///
/// Newline-joined UTF-8, no trailing newline: [`PROTOCOL`], `sr25519`, the upper-cased method,
/// the request target (path plus `?query` exactly as sent), the lowercase-hex sha256 of the raw
/// body, the decimal nonce, the sender SS58 and the receiver SS58 (or [`NO_RECEIVER`]).
pub fn build_payload(
    method: &str,
    target: &str,
    body: &[u8],
    nonce_ns: u64,
    sender_ss58: &str,
    receiver_ss58: Option<&str>,
) -> Vec<u8> {
    let body_hash = hex::encode(Sha256::digest(body));
    let nonce = nonce_ns.to_string();
    let receiver = receiver_ss58.unwrap_or(NO_RECEIVER);
    let lines = [
        PROTOCOL,
        SCHEME_SR25519,
        &method.to_ascii_uppercase(),
        target,
        &body_hash,
        &nonce,
        sender_ss58,
        receiver,
    ];
    let len = lines.iter().map(|line| line.len() + 1).sum::<usize>() - 1;
    let mut payload = Vec::with_capacity(len);
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            payload.push(b'\n');
        }
        payload.extend_from_slice(line.as_bytes());
    }
    payload
}

/// Nanoseconds since the Unix epoch from the system clock (0 if the clock is before 1970).
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_matches_the_sdk_byte_for_byte() {
        let payload = build_payload(
            "post",
            "/v1/generate",
            br#"{"prompt": "hello"}"#,
            1_764_000_000_000_000_000,
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
            Some("5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"),
        );
        let expected = "btauth/1\nsr25519\nPOST\n/v1/generate\n\
            341c57448e531310fbbe83f44cea2a5e838bd9e8a6b82b269f01d0dbbc23c3cc\n\
            1764000000000000000\n\
            5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY\n\
            5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
        assert_eq!(String::from_utf8(payload).unwrap(), expected);
    }

    #[test]
    fn unbound_payload_ends_with_a_dash() {
        let payload = build_payload("GET", "/x", b"", 7, "sender", None);
        let text = String::from_utf8(payload).unwrap();
        assert!(text.ends_with("\n7\nsender\n-"), "{text}");
        assert!(text.contains("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(unix_now_ns() > 1_577_836_800_000_000_000);
    }
}
