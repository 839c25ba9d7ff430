//! Why a signed request was refused, with the stable codes our JSON errors carry.
//!
//! Messages are safe to send to the (unauthenticated) caller: they name headers and limits but
//! never echo the signature, the payload or header values.

use std::fmt;

use super::{HEADER_CRYPTO, HEADER_RECEIVER};

/// A signed request failed authentication. [`AuthError::kind`] groups the variants into the
/// SDK's exception classes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A required btauth header is absent.
    #[error("missing {header}")]
    MissingHeader {
        /// The header's canonical name.
        header: &'static str,
    },
    /// A btauth header is present but unusable.
    #[error("{header} {problem}")]
    InvalidHeader {
        /// The header's canonical name.
        header: &'static str,
        /// What is wrong with it, e.g. "is not a decimal integer".
        problem: &'static str,
    },
    /// The sender's SS58 address does not decode (bad base58, length or checksum).
    #[error("invalid hotkey address")]
    InvalidHotkey,
    /// The signature hex decodes to a length other than 64 bytes.
    #[error("signature is {length} bytes, expected 64")]
    InvalidSignatureLength {
        /// Decoded length in bytes.
        length: usize,
    },
    /// The request declares a signature scheme the SDK knows but this server does not accept.
    #[error("{HEADER_CRYPTO} {scheme} is not supported here: sign with an sr25519 hotkey")]
    UnsupportedCrypto {
        /// The declared scheme, e.g. `ed25519`.
        scheme: &'static str,
    },
    /// No receiver header while this server requires receiver-bound requests.
    #[error("missing {HEADER_RECEIVER}: this server requires receiver-bound requests")]
    MissingReceiver,
    /// The request was signed for another receiving hotkey.
    #[error("request was signed for a different receiving hotkey")]
    WrongReceiver,
    /// The nonce is older than the freshness window.
    #[error("nonce is older than the {max_age_ms} ms freshness window")]
    TooOld {
        /// The window, in milliseconds.
        max_age_ms: u128,
    },
    /// The nonce is further in the future than the allowed clock skew.
    #[error("nonce is more than {allowed_skew_ms} ms in the future")]
    TooFarAhead {
        /// The allowed skew, in milliseconds.
        allowed_skew_ms: u128,
    },
    /// The replay memory is full and no longer covers this nonce (see [`super::NonceStore`]).
    #[error(
        "nonce is older than the replay window this server can remember right now; re-sign and retry"
    )]
    OutsideReplayWindow,
    /// The signature does not verify against the claimed hotkey.
    #[error("signature does not verify against the claimed hotkey")]
    BadSignature,
    /// This (hotkey, nonce) pair was already accepted inside the window.
    #[error("this nonce was already accepted from this hotkey")]
    Replayed,
}

/// The SDK's failure classes, plus our refusal of non-sr25519 schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthErrorKind {
    /// A header is missing or unparseable (`MalformedAuth`).
    MalformedAuth,
    /// A scheme other than sr25519 (`ed25519`) was declared.
    UnsupportedCrypto,
    /// Signed for another receiver, or for none (`WrongReceiver`).
    WrongReceiver,
    /// Outside the freshness window (`StaleRequest`).
    StaleRequest,
    /// The signature does not verify (`BadSignature`).
    BadSignature,
    /// Already accepted (`ReplayedRequest`).
    ReplayedRequest,
}

impl AuthErrorKind {
    /// Every kind, for exhaustive tests and docs.
    pub const ALL: [Self; 6] = [
        Self::MalformedAuth,
        Self::UnsupportedCrypto,
        Self::WrongReceiver,
        Self::StaleRequest,
        Self::BadSignature,
        Self::ReplayedRequest,
    ];

    /// The stable snake_case code of JSON error bodies (`{"error": code, ...}`).
    pub fn code(self) -> &'static str {
        match self {
            Self::MalformedAuth => "malformed_auth",
            Self::UnsupportedCrypto => "unsupported_crypto",
            Self::WrongReceiver => "wrong_receiver",
            Self::StaleRequest => "stale_request",
            Self::BadSignature => "bad_signature",
            Self::ReplayedRequest => "replayed_request",
        }
    }

    /// The SDK's exception class name (`MalformedAuth`, `StaleRequest`, ...), as in test vectors.
    pub fn sdk_name(self) -> &'static str {
        match self {
            Self::MalformedAuth => "MalformedAuth",
            Self::UnsupportedCrypto => "UnsupportedCrypto",
            Self::WrongReceiver => "WrongReceiver",
            Self::StaleRequest => "StaleRequest",
            Self::BadSignature => "BadSignature",
            Self::ReplayedRequest => "ReplayedRequest",
        }
    }
}

impl fmt::Display for AuthErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl AuthError {
    /// The failure class of this error.
    pub fn kind(&self) -> AuthErrorKind {
        match self {
            Self::MissingHeader { .. }
            | Self::InvalidHeader { .. }
            | Self::InvalidHotkey
            | Self::InvalidSignatureLength { .. } => AuthErrorKind::MalformedAuth,
            Self::UnsupportedCrypto { .. } => AuthErrorKind::UnsupportedCrypto,
            Self::MissingReceiver | Self::WrongReceiver => AuthErrorKind::WrongReceiver,
            Self::TooOld { .. } | Self::TooFarAhead { .. } | Self::OutsideReplayWindow => {
                AuthErrorKind::StaleRequest
            }
            Self::BadSignature => AuthErrorKind::BadSignature,
            Self::Replayed => AuthErrorKind::ReplayedRequest,
        }
    }

    /// Shorthand for `self.kind().code()`.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case() {
        let codes: std::collections::HashSet<_> =
            AuthErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), AuthErrorKind::ALL.len());
        for code in codes {
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
        }
    }

    #[test]
    fn variants_map_to_the_sdk_classes() {
        assert_eq!(AuthError::MissingReceiver.code(), "wrong_receiver");
        assert_eq!(AuthError::OutsideReplayWindow.code(), "stale_request");
        assert_eq!(AuthError::InvalidHotkey.code(), "malformed_auth");
        assert_eq!(AuthError::Replayed.kind().sdk_name(), "ReplayedRequest");
        assert_eq!(
            AuthError::TooOld { max_age_ms: 10_000 }.to_string(),
            "nonce is older than the 10000 ms freshness window"
        );
    }
}
