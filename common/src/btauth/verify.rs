//! The receiving side: [`Verifier::verify`] runs the SDK's five checks in the SDK's order.
//!
//! 1. header shape → malformed (or unsupported crypto for `ed25519`),
//! 2. receiver binding → wrong receiver,
//! 3. freshness → stale,
//! 4. signature over the rebuilt payload (the body hash is always recomputed) → bad signature,
//! 5. replay, remembered only after step 4 so forged traffic cannot poison it → replayed.
//!
//! Parsing follows the SDK's leniency where it matters for interop: the nonce is read like
//! Python's `int()` (surrounding whitespace, a sign, `_` between digits) and the payload uses its
//! canonical decimal; the crypto header is case-insensitive and may be `1` for sr25519; signature
//! hex may have `0x` and whitespace between bytes; the sender may use any one-byte SS58 prefix.
//! Stricter than the SDK: a btauth header given twice is refused as malformed.

use http::HeaderMap;

use super::nonce::{DEFAULT_CAPACITY, NonceRejection, NonceStore};
use super::{
    AuthError, DEFAULT_ALLOWED_SKEW, DEFAULT_MAX_AGE, HEADER_CRYPTO, HEADER_HOTKEY, HEADER_NONCE,
    HEADER_RECEIVER, HEADER_SIGNATURE, HEADER_VERSION, VERSION, build_payload,
};
use crate::keys::{AccountId, Signature, ss58};

/// The authenticated sender of a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The sender's hotkey.
    pub hotkey: AccountId,
    /// The nonce it signed (nanoseconds since the Unix epoch).
    pub nonce_ns: u64,
}

/// Tunables of a [`Verifier`]; `Default` gives the SDK's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierConfig {
    /// How old a nonce may be (10 s).
    pub max_age: std::time::Duration,
    /// How far ahead of our clock a nonce may be (2 s).
    pub allowed_skew: std::time::Duration,
    /// Refuse requests without a receiver header (true, as the SDK's `require_receiver`).
    pub require_receiver: bool,
    /// Most (hotkey, nonce) pairs remembered for replay protection (see [`NonceStore`]).
    pub nonce_capacity: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            max_age: DEFAULT_MAX_AGE,
            allowed_skew: DEFAULT_ALLOWED_SKEW,
            require_receiver: true,
            nonce_capacity: DEFAULT_CAPACITY,
        }
    }
}

/// Verifies btauth/1 requests addressed to one hotkey and remembers accepted nonces.
///
/// Share one per server (it is `Sync`; wrap it in an `Arc`): the replay memory is in it.
#[derive(Debug)]
pub struct Verifier {
    /// Our hotkey, as the receiver header must spell it (SS58 prefix 42).
    self_ss58: String,
    max_age_ns: i128,
    allowed_skew_ns: i128,
    require_receiver: bool,
    nonces: NonceStore,
}

/// Headers that passed steps 1–3; the body is still to be checked.
#[derive(Debug)]
pub(crate) struct Pending<'h> {
    sender_ss58: &'h str,
    receiver_ss58: Option<&'h str>,
    nonce_ns: u64,
    signature: Vec<u8>,
}

impl Pending<'_> {
    /// The caller the headers claim to be, before the signature over the body is checked: what
    /// the server authorizes first, so that a hotkey it would refuse never gets a body read.
    pub(crate) fn claimed(&self) -> Result<Caller, AuthError> {
        let (_prefix, public) =
            ss58::decode(self.sender_ss58).map_err(|_| AuthError::InvalidHotkey)?;
        Ok(Caller {
            hotkey: AccountId(public),
            nonce_ns: self.nonce_ns,
        })
    }
}

impl Verifier {
    /// A verifier for requests to `self_hotkey` with the SDK's defaults.
    pub fn new(self_hotkey: AccountId) -> Self {
        Self::with_config(self_hotkey, VerifierConfig::default())
    }

    /// A verifier with explicit tunables.
    pub fn with_config(self_hotkey: AccountId, config: VerifierConfig) -> Self {
        let max_age_ns = config.max_age.as_nanos();
        let allowed_skew_ns = config.allowed_skew.as_nanos();
        let retention = u64::try_from(max_age_ns + allowed_skew_ns).unwrap_or(u64::MAX);
        Self {
            self_ss58: self_hotkey.to_ss58(),
            max_age_ns: i128::try_from(max_age_ns).unwrap_or(i128::MAX),
            allowed_skew_ns: i128::try_from(allowed_skew_ns).unwrap_or(i128::MAX),
            require_receiver: config.require_receiver,
            nonces: NonceStore::new(retention, config.nonce_capacity),
        }
    }

    /// Our hotkey's SS58 address, the receiver this verifier accepts.
    pub fn self_ss58(&self) -> &str {
        &self.self_ss58
    }

    /// The replay memory (for metrics and tests).
    pub fn nonce_store(&self) -> &NonceStore {
        &self.nonces
    }

    /// Authenticates a received request; on success its nonce is remembered.
    ///
    /// `method` and `target` (path plus `?query` exactly as received) and `body` (the raw bytes,
    /// before any parsing) come from the request; `now_ns` is the current Unix time in ns.
    pub fn verify(
        &self,
        method: &str,
        target: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_ns: u64,
    ) -> Result<Caller, AuthError> {
        let pending = self.check_headers(headers, now_ns)?;
        self.check_body(pending, method, target, body, now_ns)
    }

    /// Steps 1–3, which need no body: shape, receiver, freshness.
    pub(crate) fn check_headers<'h>(
        &self,
        headers: &'h HeaderMap,
        now_ns: u64,
    ) -> Result<Pending<'h>, AuthError> {
        if header(headers, HEADER_VERSION)? != Some(VERSION) {
            return Err(AuthError::InvalidHeader {
                header: HEADER_VERSION,
                problem: "is missing or not \"1\"",
            });
        }
        let sender_ss58 = match header(headers, HEADER_HOTKEY)? {
            Some(s) if !s.is_empty() => s,
            _ => {
                return Err(AuthError::MissingHeader {
                    header: HEADER_HOTKEY,
                });
            }
        };
        let raw_nonce = header(headers, HEADER_NONCE)?.ok_or(AuthError::MissingHeader {
            header: HEADER_NONCE,
        })?;
        let nonce = parse_python_int(raw_nonce).ok_or(AuthError::InvalidHeader {
            header: HEADER_NONCE,
            problem: "is not a decimal integer",
        })?;
        if let Some(crypto) = header(headers, HEADER_CRYPTO)? {
            check_crypto(crypto)?;
        }
        let raw_signature = header(headers, HEADER_SIGNATURE)?.ok_or(AuthError::MissingHeader {
            header: HEADER_SIGNATURE,
        })?;
        let signature = parse_python_hex(raw_signature.strip_prefix("0x").unwrap_or(raw_signature))
            .ok_or(AuthError::InvalidHeader {
                header: HEADER_SIGNATURE,
                problem: "is not hex",
            })?;

        let receiver_ss58 = header(headers, HEADER_RECEIVER)?;
        match receiver_ss58 {
            None if self.require_receiver => return Err(AuthError::MissingReceiver),
            Some(receiver) if receiver != self.self_ss58 => return Err(AuthError::WrongReceiver),
            _ => {}
        }

        let now = i128::from(now_ns);
        let too_old = AuthError::TooOld {
            max_age_ms: self.max_age_ns.unsigned_abs() / 1_000_000,
        };
        if now - nonce > self.max_age_ns {
            return Err(too_old);
        }
        if nonce - now > self.allowed_skew_ns {
            return Err(AuthError::TooFarAhead {
                allowed_skew_ms: self.allowed_skew_ns.unsigned_abs() / 1_000_000,
            });
        }
        // Only a clock within 10 s of 1970 lets a negative nonce through the window.
        let nonce_ns = u64::try_from(nonce).map_err(|_| too_old)?;
        Ok(Pending {
            sender_ss58,
            receiver_ss58,
            nonce_ns,
            signature,
        })
    }

    /// Steps 4–5: the signature over the rebuilt payload, then replay.
    pub(crate) fn check_body(
        &self,
        pending: Pending<'_>,
        method: &str,
        target: &str,
        body: &[u8],
        now_ns: u64,
    ) -> Result<Caller, AuthError> {
        let (_prefix, public) =
            ss58::decode(pending.sender_ss58).map_err(|_| AuthError::InvalidHotkey)?;
        let hotkey = AccountId(public);
        let signature = <[u8; 64]>::try_from(pending.signature.as_slice()).map_err(|_| {
            AuthError::InvalidSignatureLength {
                length: pending.signature.len(),
            }
        })?;
        let payload = build_payload(
            method,
            target,
            body,
            pending.nonce_ns,
            pending.sender_ss58,
            pending.receiver_ss58,
        );
        if !hotkey.verify(&payload, &Signature(signature)) {
            return Err(AuthError::BadSignature);
        }
        self.nonces
            .check_and_store(&hotkey, pending.nonce_ns, now_ns)
            .map_err(|rejection| match rejection {
                NonceRejection::Replayed => AuthError::Replayed,
                NonceRejection::OutsideWindow => AuthError::OutsideReplayWindow,
            })?;
        Ok(Caller {
            hotkey,
            nonce_ns: pending.nonce_ns,
        })
    }
}

/// A btauth header's value: `None` when absent; malformed when repeated or not visible ASCII.
fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<Option<&'h str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidHeader {
            header: name,
            problem: "appears more than once",
        });
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| AuthError::InvalidHeader {
            header: name,
            problem: "is not visible ASCII",
        })
}

/// The SDK's `parse_crypto_type`: `sr25519`/`ed25519` in any case, or their codes `1`/`0`.
fn check_crypto(value: &str) -> Result<(), AuthError> {
    let normalized = value.trim().to_ascii_lowercase();
    let code = if !normalized.is_empty() && normalized.bytes().all(|b| b.is_ascii_digit()) {
        match normalized.trim_start_matches('0') {
            "" => Some(0),
            significant => significant.parse::<u64>().ok(),
        }
    } else {
        None
    };
    match (normalized.as_str(), code) {
        ("sr25519", _) | (_, Some(1)) => Ok(()),
        ("ed25519", _) | (_, Some(0)) => Err(AuthError::UnsupportedCrypto { scheme: "ed25519" }),
        _ => Err(AuthError::InvalidHeader {
            header: HEADER_CRYPTO,
            problem: "is not a known signature scheme",
        }),
    }
}

/// Python's `int(text)` for base 10: surrounding whitespace, an optional sign, ASCII digits with
/// single `_` between them. Values beyond `i128` saturate (they fail the freshness check anyway).
fn parse_python_int(text: &str) -> Option<i128> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut value: i128 = 0;
    for byte in digits.bytes() {
        match byte {
            b'_' => continue,
            b'0'..=b'9' => {
                let digit = i128::from(byte - b'0');
                value =
                    value
                        .saturating_mul(10)
                        .saturating_add(if negative { -digit } else { digit });
            }
            _ => return None,
        }
    }
    Some(value)
}

/// Python's `bytes.fromhex`: pairs of hex digits (any case), whitespace allowed between pairs.
fn parse_python_hex(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len() / 2);
    let mut chars = text.bytes();
    while let Some(c) = chars.next() {
        if c.is_ascii_whitespace() {
            continue;
        }
        let high = (c as char).to_digit(16)?;
        let low = (chars.next()? as char).to_digit(16)?;
        bytes.push(u8::try_from(high * 16 + low).ok()?);
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btauth::{AuthErrorKind, sign_headers};
    use crate::keys::Keypair;

    const SECOND: u64 = 1_000_000_000;
    const T0: u64 = 1_764_000_000 * SECOND;

    // Deriving from a URI runs PBKDF2: derive once.
    static ALICE: std::sync::LazyLock<Keypair> =
        std::sync::LazyLock::new(|| Keypair::from_uri("//Alice").unwrap());
    static BOB: std::sync::LazyLock<AccountId> =
        std::sync::LazyLock::new(|| Keypair::from_uri("//Bob").unwrap().account_id());

    fn alice() -> Keypair {
        ALICE.clone()
    }
    fn bob() -> AccountId {
        *BOB
    }

    fn signed(method: &str, target: &str, body: &[u8], nonce: u64) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in sign_headers(&ALICE, method, target, body, Some(&BOB), nonce) {
            map.insert(name, value.parse().unwrap());
        }
        map
    }

    fn kind(result: Result<Caller, AuthError>) -> AuthErrorKind {
        result.expect_err("should be refused").kind()
    }

    #[test]
    fn accepts_a_fresh_request_and_names_the_caller() {
        let verifier = Verifier::new(bob());
        let headers = signed("POST", "/v1/generate", b"{}", T0);
        let caller = verifier
            .verify("POST", "/v1/generate", &headers, b"{}", T0 + SECOND)
            .unwrap();
        assert_eq!(
            caller,
            Caller {
                hotkey: alice().account_id(),
                nonce_ns: T0
            }
        );
    }

    #[test]
    fn refuses_a_replay_of_an_accepted_request() {
        let verifier = Verifier::new(bob());
        let headers = signed("GET", "/a", b"", T0);
        verifier.verify("GET", "/a", &headers, b"", T0).unwrap();
        assert_eq!(
            kind(verifier.verify("GET", "/a", &headers, b"", T0 + 1)),
            AuthErrorKind::ReplayedRequest
        );
    }

    #[test]
    fn forged_requests_do_not_poison_the_replay_memory() {
        let verifier = Verifier::new(bob());
        let headers = signed("GET", "/a", b"", T0);
        assert_eq!(
            kind(verifier.verify("GET", "/b", &headers, b"", T0)),
            AuthErrorKind::BadSignature
        );
        assert!(verifier.verify("GET", "/a", &headers, b"", T0).is_ok());
    }

    #[test]
    fn rejects_signature_for_other_receiver() {
        let verifier = Verifier::new(alice().account_id());
        let headers = signed("GET", "/a", b"", T0);
        assert_eq!(
            kind(verifier.verify("GET", "/a", &headers, b"", T0)),
            AuthErrorKind::WrongReceiver
        );
    }

    #[test]
    fn freshness_window_edges_are_inclusive() {
        let verifier = Verifier::new(bob());
        let ok = |nonce: u64, now: u64| {
            verifier.verify("GET", "/", &signed("GET", "/", b"", nonce), b"", now)
        };
        assert!(ok(T0, T0 + 10 * SECOND).is_ok());
        assert_eq!(
            kind(ok(T0 + 1, T0 + 1 + 10 * SECOND + 1)),
            AuthErrorKind::StaleRequest
        );
        assert!(ok(T0 + 2 * SECOND + 5, T0 + 5).is_ok());
        assert_eq!(
            ok(T0 + 2 * SECOND + 7, T0 + 6).unwrap_err(),
            AuthError::TooFarAhead {
                allowed_skew_ms: 2000
            }
        );
    }

    #[test]
    fn configurable_window_is_honoured() {
        let config = VerifierConfig {
            max_age: std::time::Duration::from_secs(1),
            allowed_skew: std::time::Duration::ZERO,
            ..VerifierConfig::default()
        };
        let verifier = Verifier::with_config(bob(), config);
        let headers = signed("GET", "/", b"", T0);
        assert_eq!(
            kind(verifier.verify("GET", "/", &headers, b"", T0 + 2 * SECOND)),
            AuthErrorKind::StaleRequest
        );
        assert_eq!(
            kind(verifier.verify("GET", "/", &headers, b"", T0 - 1)),
            AuthErrorKind::StaleRequest
        );
        assert!(
            verifier
                .verify("GET", "/", &headers, b"", T0 + SECOND)
                .is_ok()
        );
    }

    #[test]
    fn unbound_requests_pass_only_when_receiver_is_optional() {
        let mut headers = HeaderMap::new();
        for (name, value) in sign_headers(&alice(), "GET", "/", b"", None, T0) {
            headers.insert(name, value.parse().unwrap());
        }
        let strict = Verifier::new(bob());
        assert_eq!(
            strict.verify("GET", "/", &headers, b"", T0).unwrap_err(),
            AuthError::MissingReceiver
        );
        let lenient = Verifier::with_config(
            bob(),
            VerifierConfig {
                require_receiver: false,
                ..VerifierConfig::default()
            },
        );
        assert!(lenient.verify("GET", "/", &headers, b"", T0).is_ok());
    }

    #[test]
    fn header_shape_problems_are_malformed() {
        let verifier = Verifier::new(bob());
        let base = signed("GET", "/", b"", T0);
        let cases: [(&str, Option<&str>); 7] = [
            (HEADER_VERSION, Some("2")),
            (HEADER_HOTKEY, None),
            (HEADER_NONCE, Some("12.5")),
            (HEADER_SIGNATURE, Some("0xzz")),
            (HEADER_SIGNATURE, Some("0xabcd")),
            (HEADER_CRYPTO, Some("ecdsa")),
            (
                HEADER_HOTKEY,
                Some("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ"),
            ),
        ];
        for (name, value) in cases {
            let mut headers = base.clone();
            match value {
                Some(v) => headers.insert(name, v.parse().unwrap()),
                None => headers.remove(name),
            };
            assert_eq!(
                kind(verifier.verify("GET", "/", &headers, b"", T0)),
                AuthErrorKind::MalformedAuth,
                "{name}: {value:?}"
            );
        }
        let mut twice = base.clone();
        twice.append(HEADER_NONCE, T0.to_string().parse().unwrap());
        assert_eq!(
            kind(verifier.verify("GET", "/", &twice, b"", T0)),
            AuthErrorKind::MalformedAuth
        );
    }

    #[test]
    fn ed25519_is_refused_clearly() {
        let verifier = Verifier::new(bob());
        let mut headers = signed("GET", "/", b"", T0);
        for scheme in ["ed25519", "ED25519", "0"] {
            headers.insert(HEADER_CRYPTO, scheme.parse().unwrap());
            assert_eq!(
                verifier.verify("GET", "/", &headers, b"", T0).unwrap_err(),
                AuthError::UnsupportedCrypto { scheme: "ed25519" }
            );
        }
        for scheme in ["sr25519", " SR25519 ", "1", "01"] {
            let mut headers = signed("GET", "/", b"", T0 + u64::from(scheme.len() as u8));
            headers.insert(HEADER_CRYPTO, scheme.parse().unwrap());
            let nonce = T0 + u64::from(scheme.len() as u8);
            assert!(
                verifier.verify("GET", "/", &headers, b"", nonce).is_ok(),
                "{scheme}"
            );
        }
    }

    #[test]
    fn header_names_are_case_insensitive_and_nonce_is_read_like_python() {
        let verifier = Verifier::new(bob());
        let mut headers = HeaderMap::new();
        for (name, value) in signed("GET", "/", b"", T0).iter() {
            headers.insert(
                http::HeaderName::from_bytes(name.as_str().to_uppercase().as_bytes()).unwrap(),
                value.clone(),
            );
        }
        let spelled = format!("+{}_{}", &T0.to_string()[..4], &T0.to_string()[4..]);
        headers.insert(HEADER_NONCE, spelled.parse().unwrap());
        assert!(verifier.verify("get", "/", &headers, b"", T0).is_ok());
    }

    #[test]
    fn concurrent_verification_accepts_each_request_exactly_once() {
        let verifier = std::sync::Arc::new(Verifier::new(bob()));
        let requests: std::sync::Arc<Vec<HeaderMap>> =
            std::sync::Arc::new((0..64).map(|i| signed("GET", "/", b"", T0 + i)).collect());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (verifier, requests) = (verifier.clone(), requests.clone());
                std::thread::spawn(move || {
                    requests
                        .iter()
                        .filter(|headers| verifier.verify("GET", "/", headers, b"", T0).is_ok())
                        .count()
                })
            })
            .collect();
        let accepted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(accepted, 64);
    }

    #[test]
    fn a_full_replay_memory_refuses_old_nonces_instead_of_forgetting() {
        let config = VerifierConfig {
            nonce_capacity: 16,
            ..VerifierConfig::default()
        };
        let verifier = Verifier::with_config(bob(), config);
        // 1024 requests over 16 one-entry shards: every shard overflows.
        let requests: Vec<HeaderMap> = (0..1024).map(|i| signed("GET", "/", b"", T0 + i)).collect();
        for headers in &requests {
            verifier.verify("GET", "/", headers, b"", T0).unwrap();
        }
        assert!(verifier.nonce_store().len() <= 16);
        for headers in &requests {
            let refused = verifier.verify("GET", "/", headers, b"", T0).unwrap_err();
            assert!(
                matches!(
                    refused,
                    AuthError::Replayed | AuthError::OutsideReplayWindow
                ),
                "{refused:?}"
            );
        }
        let late_but_new = signed("POST", "/", b"", T0 + 1);
        assert_eq!(
            verifier
                .verify("POST", "/", &late_but_new, b"", T0)
                .unwrap_err()
                .kind(),
            AuthErrorKind::StaleRequest
        );
        let fresh = signed("GET", "/", b"", T0 + SECOND);
        assert!(
            verifier
                .verify("GET", "/", &fresh, b"", T0 + SECOND)
                .is_ok()
        );
    }

    #[test]
    fn python_int_parsing_matches_the_sdk() {
        assert_eq!(parse_python_int(" 0017 "), Some(17));
        assert_eq!(parse_python_int("-5"), Some(-5));
        assert_eq!(parse_python_int("1_000"), Some(1000));
        assert_eq!(parse_python_int("9".repeat(60).as_str()), Some(i128::MAX));
        for bad in ["", "+", "_1", "1_", "1__0", "0x10", "1e3", "1.0", "- 1"] {
            assert_eq!(parse_python_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn python_hex_parsing_matches_the_sdk() {
        assert_eq!(parse_python_hex("aB cd"), Some(vec![0xab, 0xcd]));
        assert_eq!(parse_python_hex(""), Some(vec![]));
        assert_eq!(parse_python_hex("a bcd"), None);
        assert_eq!(parse_python_hex("abc"), None);
    }
}
