//! The sending side: auth headers for any HTTP client, and a reqwest client that signs each call.
//!
//! Every call signs a fresh nonce: retries must go through [`SignedClient::request`] again, never
//! through `RequestBuilder::try_clone` (the receiver would refuse the copy as a replay).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::{
    HEADER_HOTKEY, HEADER_NONCE, HEADER_RECEIVER, HEADER_SIGNATURE, HEADER_VERSION, VERSION,
    build_payload, unix_now_ns,
};
use crate::keys::{AccountId, Keypair};

/// The last nonce handed out by [`next_nonce_ns`] in this process.
static LAST_NONCE: AtomicU64 = AtomicU64::new(0);

/// A fresh nonce: the current Unix time in ns, or one more than the previous nonce of this process
/// if the clock has not moved past it (fast loops, clock steps backwards). Strictly increasing.
pub fn next_nonce_ns() -> u64 {
    let now = unix_now_ns();
    let mut last = LAST_NONCE.load(Ordering::Relaxed);
    loop {
        let next = now.max(last.saturating_add(1));
        match LAST_NONCE.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// The btauth/1 headers for one request, as `(name, value)` pairs in the SDK's order.
///
/// `target` is the path plus `?query` exactly as it will be sent ([`request_target`] gives it for
/// a URL); `body` the exact bytes that will be sent. `receiver` should always be given: verifiers
/// refuse unbound requests by default. Used by [`SignedClient`], the CLI and tests.
pub fn sign_headers(
    keypair: &Keypair,
    method: &str,
    target: &str,
    body: &[u8],
    receiver: Option<&AccountId>,
    nonce_ns: u64,
) -> Vec<(&'static str, String)> {
    let sender = keypair.account_id().to_ss58();
    let receiver = receiver.map(AccountId::to_ss58);
    let payload = build_payload(method, target, body, nonce_ns, &sender, receiver.as_deref());
    let signature = keypair.sign(&payload);
    let mut headers = vec![
        (HEADER_VERSION, VERSION.to_owned()),
        (HEADER_HOTKEY, sender),
        (HEADER_NONCE, nonce_ns.to_string()),
        (HEADER_SIGNATURE, signature.to_hex()),
    ];
    if let Some(receiver) = receiver {
        headers.push((HEADER_RECEIVER, receiver));
    }
    headers
}

/// The request target an HTTP/1 client sends for `url`: its path, plus `?` and the query when the
/// URL has one (even an empty one). The fragment is never sent.
pub fn request_target(url: &reqwest::Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{}", url.path(), query),
        None => url.path().to_owned(),
    }
}

/// A reqwest client that signs every request with a hotkey.
#[derive(Debug, Clone)]
pub struct SignedClient {
    /// The HTTP client (connection pool, timeouts); cheap to clone.
    client: reqwest::Client,
    /// The hotkey that signs.
    keypair: Keypair,
}

impl SignedClient {
    /// Signs with `keypair`, sending through `client`.
    pub fn new(client: reqwest::Client, keypair: Keypair) -> Self {
        Self { client, keypair }
    }

    /// The signing hotkey.
    pub fn hotkey(&self) -> AccountId {
        self.keypair.account_id()
    }

    /// The underlying HTTP client, for unsigned calls.
    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }

    /// A request to `url` for `receiver`, with `body`, signed with a fresh nonce.
    ///
    /// Callers may add headers (`Content-Type`, `Range`) and a timeout, but must not change the
    /// URL or body. Each call signs anew: call it again for a retry.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        receiver: &AccountId,
        body: impl Into<Bytes>,
    ) -> reqwest::RequestBuilder {
        let body: Bytes = body.into();
        let target = request_target(&url);
        let headers = sign_headers(
            &self.keypair,
            method.as_str(),
            &target,
            &body,
            Some(receiver),
            next_nonce_ns(),
        );
        let mut builder = self.client.request(method, url);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        if !body.is_empty() {
            builder = builder.body(body);
        }
        builder
    }

    /// A signed `GET` with no body.
    pub fn get(&self, url: reqwest::Url, receiver: &AccountId) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, url, receiver, Bytes::new())
    }

    /// A signed `POST` of `value` as JSON (with `Content-Type: application/json`).
    pub fn post_json<T: serde::Serialize + ?Sized>(
        &self,
        url: reqwest::Url,
        receiver: &AccountId,
        value: &T,
    ) -> Result<reqwest::RequestBuilder, serde_json::Error> {
        let body = serde_json::to_vec(value)?;
        Ok(self
            .request(reqwest::Method::POST, url, receiver, body)
            .header(http::header::CONTENT_TYPE, "application/json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_strictly_increase_even_when_called_in_a_tight_loop() {
        let nonces: Vec<u64> = (0..10_000).map(|_| next_nonce_ns()).collect();
        assert!(nonces.windows(2).all(|w| w[0] < w[1]));
        assert!(nonces[0] >= unix_now_ns() - 60_000_000_000);
    }

    #[test]
    fn nonces_stay_unique_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..2_000).map(|_| next_nonce_ns()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count);
    }

    #[test]
    fn request_target_keeps_the_query_as_sent() {
        let target = |s: &str| request_target(&reqwest::Url::parse(s).unwrap());
        assert_eq!(
            target("http://h:1/v1/model?format=safetensors#frag"),
            "/v1/model?format=safetensors"
        );
        assert_eq!(target("http://h:1"), "/");
        assert_eq!(target("http://h/a?"), "/a?");
        assert_eq!(target("http://h/a b?x=1 2"), "/a%20b?x=1%202");
    }

    #[test]
    fn headers_carry_receiver_only_when_bound() {
        let alice = Keypair::from_uri("//Alice").unwrap();
        let bob = Keypair::from_uri("//Bob").unwrap().account_id();
        let bound = sign_headers(&alice, "GET", "/", b"", Some(&bob), 5);
        let names: Vec<_> = bound.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                HEADER_VERSION,
                HEADER_HOTKEY,
                HEADER_NONCE,
                HEADER_SIGNATURE,
                HEADER_RECEIVER
            ]
        );
        assert_eq!(bound[2].1, "5");
        assert!(bound[3].1.starts_with("0x") && bound[3].1.len() == 130);
        let unbound = sign_headers(&alice, "GET", "/", b"", None, 5);
        assert!(unbound.iter().all(|(n, _)| *n != HEADER_RECEIVER));
    }

    #[test]
    fn signed_client_sets_headers_and_body() {
        let client = SignedClient::new(
            reqwest::Client::new(),
            Keypair::from_uri("//Alice").unwrap(),
        );
        let bob = Keypair::from_uri("//Bob").unwrap().account_id();
        let url = reqwest::Url::parse("http://127.0.0.1:9/v1/generate?x=1").unwrap();
        let request = client
            .post_json(url, &bob, &serde_json::json!({"a": 1}))
            .unwrap()
            .build()
            .unwrap();
        let headers = request.headers();
        assert_eq!(headers[HEADER_RECEIVER], bob.to_ss58().as_str());
        assert_eq!(headers[HEADER_HOTKEY], client.hotkey().to_ss58().as_str());
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(
            request.body().and_then(|b| b.as_bytes()),
            Some(&br#"{"a":1}"#[..])
        );
    }
}
