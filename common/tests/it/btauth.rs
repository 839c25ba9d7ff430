//! btauth/1 against the SDK: the golden vectors of `vectors/btauth.json`, requests signed by
//! `bittensor.http_auth.sign` verified here, requests signed here verified by
//! `bittensor.http_auth.verify`, a sign→verify property, and the axum middleware end to end.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use http::{HeaderMap, Method, Request, StatusCode};
use proptest::prelude::*;
use serde::Deserialize;
use subnet_common::btauth::{
    self, AuthErrorKind, Caller, Forbidden, Guard, HEADER_NONCE, HEADER_RECEIVER, SignedClient,
    VerifiedCaller, Verifier, build_payload, sign_headers, unix_now_ns,
};
use subnet_common::keys::{AccountId, Keypair};
use tower::ServiceExt;

use crate::support;

const SECOND: u64 = 1_000_000_000;

// Deriving from a URI runs PBKDF2: derive each dev key once.
static ALICE: LazyLock<Keypair> = LazyLock::new(|| Keypair::from_uri("//Alice").unwrap());
static BOB: LazyLock<Keypair> = LazyLock::new(|| Keypair::from_uri("//Bob").unwrap());
static CHARLIE: LazyLock<Keypair> = LazyLock::new(|| Keypair::from_uri("//Charlie").unwrap());

fn alice() -> Keypair {
    ALICE.clone()
}

fn bob() -> Keypair {
    BOB.clone()
}

fn charlie() -> Keypair {
    CHARLIE.clone()
}

fn header_map<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_ref().as_bytes()).unwrap(),
            value.as_ref().parse().unwrap(),
        );
    }
    map
}

/// "ok" or the SDK's exception class name, as the vectors and the Python scripts spell verdicts.
fn verdict(result: Result<Caller, btauth::AuthError>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(error) => error.kind().sdk_name().to_owned(),
    }
}

// ---- golden vectors -------------------------------------------------------------------------

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    method: String,
    path: String,
    body_hex: String,
    sent_body_hex: String,
    nonce_ns: String,
    headers: BTreeMap<String, String>,
    /// Absent for cases whose headers never got signed as such.
    signed_payload_utf8: Option<String>,
    verifier_hotkey: String,
    verify_now_ns: String,
    expect: String,
}

fn load_cases() -> Vec<Case> {
    let path = support::shared_dir().join("vectors/btauth.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str::<Vectors>(&text)
        .expect("btauth.json parses")
        .cases
}

#[test]
fn every_vector_gets_the_sdk_verdict() {
    let cases = load_cases();
    assert!(cases.len() >= 9);
    for case in &cases {
        let verifier = Verifier::new(AccountId::from_ss58(&case.verifier_hotkey).unwrap());
        let body = hex::decode(&case.sent_body_hex).unwrap();
        let now: u64 = case.verify_now_ns.parse().unwrap();
        let headers = header_map(&case.headers);
        let result = verifier.verify(&case.method, &case.path, &headers, &body, now);
        assert_eq!(verdict(result), case.expect, "case {}", case.name);
    }
}

#[test]
fn accepted_vectors_are_refused_when_replayed() {
    let mut accepted = 0;
    for case in load_cases().iter().filter(|c| c.expect == "ok") {
        let verifier = Verifier::new(AccountId::from_ss58(&case.verifier_hotkey).unwrap());
        let body = hex::decode(&case.sent_body_hex).unwrap();
        let now: u64 = case.verify_now_ns.parse().unwrap();
        let headers = header_map(&case.headers);
        verifier
            .verify(&case.method, &case.path, &headers, &body, now)
            .unwrap();
        let again = verifier.verify(&case.method, &case.path, &headers, &body, now + 1);
        assert_eq!(verdict(again), "ReplayedRequest", "case {}", case.name);
        accepted += 1;
    }
    assert!(accepted >= 3);
}

#[test]
fn payloads_of_the_vectors_are_rebuilt_byte_for_byte() {
    let mut checked = 0;
    for case in load_cases() {
        let Some(expected) = &case.signed_payload_utf8 else {
            continue;
        };
        let receiver = case.headers.get("X-Bittensor-Receiver").map(String::as_str);
        let payload = build_payload(
            &case.method,
            &case.path,
            &hex::decode(&case.body_hex).unwrap(),
            case.nonce_ns.parse().unwrap(),
            &case.headers["X-Bittensor-Hotkey"],
            receiver,
        );
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            *expected,
            "case {}",
            case.name
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} vectors carry a payload");
}

// ---- interop with the real SDK ----------------------------------------------------------------

/// Signs requests with `bittensor.http_auth.sign` (hotkey //Alice) as described on stdin.
const PY_SIGN: &str = r#"
import json, sys
import bittensor_core as core
from bittensor import http_auth
alice = core.Keypair.create_from_uri("//Alice")
out = []
for req in json.load(sys.stdin):
    headers = http_auth.sign(alice, method=req["method"], path=req["path"],
                             body=bytes.fromhex(req["body_hex"]),
                             receiver_ss58=req["receiver"], nonce_ns=int(req["nonce_ns"]))
    out.append(headers)
print(json.dumps(out))
"#;

/// Verifies requests with `bittensor.http_auth.verify` as //Bob, in order, one nonce store.
const PY_VERIFY: &str = r#"
import json, sys
import bittensor_core as core
from bittensor import http_auth
bob = core.Keypair.create_from_uri("//Bob").ss58_address
store = http_auth.InMemoryNonceStore()
out = []
for req in json.load(sys.stdin):
    try:
        http_auth.verify(req["headers"], bytes.fromhex(req["body_hex"]), method=req["method"],
                         path=req["path"], self_hotkey_ss58=bob, nonce_store=store,
                         now_ns=int(req["now_ns"]))
        out.append("ok")
    except http_auth.AuthError as e:
        out.append(type(e).__name__)
print(json.dumps(out))
"#;

#[test]
fn requests_signed_by_the_sdk_are_verified_here() {
    let now = unix_now_ns();
    let charlie = charlie().account_id().to_ss58();
    let bob_ss58 = bob().account_id().to_ss58();
    let requests = serde_json::json!([
        {"method": "POST", "path": "/v1/generate", "body_hex": hex::encode(br#"{"prompt": "hi"}"#), "receiver": bob_ss58, "nonce_ns": now.to_string()},
        {"method": "get", "path": "/v1/model/files/model.safetensors?x=1&y=%20", "body_hex": "", "receiver": bob_ss58, "nonce_ns": (now + 1).to_string()},
        {"method": "POST", "path": "/v1/rlhf/tasks", "body_hex": "00ff", "receiver": charlie, "nonce_ns": (now + 2).to_string()},
        {"method": "POST", "path": "/v1/rlhf/labels", "body_hex": "", "receiver": null, "nonce_ns": (now + 3).to_string()},
        {"method": "GET", "path": "/v1/model/manifest", "body_hex": "", "receiver": bob_ss58, "nonce_ns": (now - 11 * SECOND).to_string()},
        {"method": "GET", "path": "/v1/model/manifest", "body_hex": "", "receiver": bob_ss58, "nonce_ns": (now + 3 * SECOND).to_string()},
    ]);
    let output = support::run_python(PY_SIGN, &requests.to_string());
    let signed: Vec<BTreeMap<String, String>> = serde_json::from_str(&output).unwrap();
    let verifier = Verifier::new(bob().account_id());
    let check = |i: usize, method: &str, path: &str, body: &[u8]| {
        verdict(verifier.verify(method, path, &header_map(&signed[i]), body, now))
    };

    assert_eq!(
        check(0, "POST", "/v1/generate", br#"{"prompt": "hi"}"#),
        "ok"
    );
    assert_eq!(
        check(1, "GET", "/v1/model/files/model.safetensors?x=1&y=%20", b""),
        "ok"
    );
    assert_eq!(
        check(2, "POST", "/v1/rlhf/tasks", &[0, 0xff]),
        "WrongReceiver"
    );
    assert_eq!(check(3, "POST", "/v1/rlhf/labels", b""), "WrongReceiver");
    assert_eq!(check(4, "GET", "/v1/model/manifest", b""), "StaleRequest");
    assert_eq!(check(5, "GET", "/v1/model/manifest", b""), "StaleRequest");
    // Replayed, and tampered copies of an accepted request.
    assert_eq!(
        check(0, "POST", "/v1/generate", br#"{"prompt": "hi"}"#),
        "ReplayedRequest"
    );
    let tampered = Verifier::new(bob().account_id());
    let headers = header_map(&signed[0]);
    let refuse = |method: &str, path: &str, body: &[u8]| {
        verdict(tampered.verify(method, path, &headers, body, now))
    };
    assert_eq!(
        refuse("POST", "/v1/generate", br#"{"prompt": "ho"}"#),
        "BadSignature"
    );
    assert_eq!(
        refuse("PUT", "/v1/generate", br#"{"prompt": "hi"}"#),
        "BadSignature"
    );
    assert_eq!(
        refuse("POST", "/v1/generate?", br#"{"prompt": "hi"}"#),
        "BadSignature"
    );
    assert_eq!(refuse("POST", "/v1/generate", br#"{"prompt": "hi"}"#), "ok");
}

#[test]
fn requests_signed_here_are_verified_by_the_sdk() {
    let now = unix_now_ns();
    let receiver = bob().account_id();
    let sign = |method: &str, path: &str, body: &[u8], nonce: u64| {
        sign_headers(&alice(), method, path, body, Some(&receiver), nonce)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect::<BTreeMap<_, _>>()
    };
    let post = sign("POST", "/v1/generate", b"{\"prompt\":1}", now);
    let get = sign("GET", "/v1/model?format=safetensors", b"", now + 1);
    let mut for_charlie = sign("GET", "/", b"", now + 2);
    for_charlie.insert(HEADER_RECEIVER.to_owned(), charlie().account_id().to_ss58());
    let mut bumped = sign("GET", "/", b"", now + 3);
    bumped.insert(HEADER_NONCE.to_owned(), (now + 4).to_string());
    let request = |headers: &BTreeMap<String, String>, method: &str, path: &str, body: &[u8]| {
        serde_json::json!({"headers": headers, "method": method, "path": path,
                           "body_hex": hex::encode(body), "now_ns": now.to_string()})
    };
    let requests = serde_json::json!([
        request(&post, "POST", "/v1/generate", b"{\"prompt\":1}"),
        request(&get, "GET", "/v1/model?format=safetensors", b""),
        request(&post, "POST", "/v1/generate", b"{\"prompt\":2}"),
        request(&post, "POST", "/v1/generate", b"{\"prompt\":1}"),
        request(&for_charlie, "GET", "/", b""),
        request(&bumped, "GET", "/", b""),
    ]);
    let output = support::run_python(PY_VERIFY, &requests.to_string());
    let verdicts: Vec<String> = serde_json::from_str(&output).unwrap();
    assert_eq!(
        verdicts,
        [
            "ok",
            "ok",
            "BadSignature",
            "ReplayedRequest",
            "WrongReceiver",
            "BadSignature"
        ]
    );
}

// ---- property: sign → verify --------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn anything_we_sign_verifies_and_any_change_breaks_it(
        method in "(GET|POST|PUT|DELETE|PATCH|get|post)",
        path in "/[a-zA-Z0-9/_.%-]{0,40}(\\?[a-z0-9=&%]{0,20})?",
        body in proptest::collection::vec(any::<u8>(), 0..512),
        age_ms in 0u64..10_000,
        flip in any::<prop::sample::Index>(),
    ) {
        let now = 1_764_000_000 * SECOND;
        let nonce = now - age_ms * 1_000_000;
        let headers = header_map(sign_headers(&alice(), &method, &path, &body, Some(&bob().account_id()), nonce));
        let verifier = Verifier::new(bob().account_id());
        let caller = verifier.verify(&method.to_uppercase(), &path, &headers, &body, now).unwrap();
        prop_assert_eq!(caller.hotkey, alice().account_id());
        prop_assert_eq!(caller.nonce_ns, nonce);

        let fresh = Verifier::new(bob().account_id());
        let mut changed = body.clone();
        if changed.is_empty() {
            changed.push(0);
        } else {
            let i = flip.index(changed.len());
            changed[i] ^= 1;
        }
        let refused = fresh.verify(&method, &path, &headers, &changed, now).unwrap_err();
        prop_assert_eq!(refused.kind(), AuthErrorKind::BadSignature);
        let other_path = format!("{path}x");
        let refused = fresh.verify(&method, &other_path, &headers, &body, now).unwrap_err();
        prop_assert_eq!(refused.kind(), AuthErrorKind::BadSignature);
    }
}

// ---- the axum middleware ----------------------------------------------------------------------

fn app(guard: Guard) -> Router {
    Router::new()
        .route(
            "/whoami",
            get(|VerifiedCaller(who): VerifiedCaller| async move { who.to_ss58() }),
        )
        .route(
            "/echo",
            post(|VerifiedCaller(_): VerifiedCaller, body: axum::body::Bytes| async move { body }),
        )
        .route(
            "/v1/validator-only",
            get(|VerifiedCaller(who): VerifiedCaller| async move { who.to_ss58() }),
        )
        .route_layer(from_fn_with_state(guard, btauth::require))
        .route("/health", get(|| async { "ok" }))
        .route(
            "/unguarded-who",
            get(|who: Option<VerifiedCaller>| async move { format!("{}", who.is_some()) }),
        )
}

fn signed_request(
    signer: &Keypair,
    method: &str,
    target: &str,
    body: &[u8],
    nonce: u64,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(target);
    for (name, value) in sign_headers(
        signer,
        method,
        target,
        body,
        Some(&bob().account_id()),
        nonce,
    ) {
        builder = builder.header(name, value);
    }
    builder.body(Body::from(body.to_vec())).unwrap()
}

async fn call(app: Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn error_code(body: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    json["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn signed_request_reaches_the_handler_with_its_caller() {
    let app = app(Guard::new(Verifier::new(bob().account_id())));
    let request = signed_request(&alice(), "GET", "/whoami", b"", unix_now_ns());
    let (status, body) = call(app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, alice().account_id().to_ss58());
}

#[tokio::test]
async fn handler_sees_the_verified_body_unchanged() {
    let app = app(Guard::new(Verifier::new(bob().account_id())));
    let request = signed_request(
        &alice(),
        "POST",
        "/echo",
        b"{\"exact\":  \"bytes\"}\n",
        unix_now_ns(),
    );
    let (status, body) = call(app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "{\"exact\":  \"bytes\"}\n");
}

#[tokio::test]
async fn refusals_answer_401_with_the_kind_as_code() {
    let app = app(Guard::new(Verifier::new(bob().account_id())));
    let now = unix_now_ns();

    let unsigned = Request::builder()
        .uri("/whoami")
        .body(Body::empty())
        .unwrap();
    let (status, body) = call(app.clone(), unsigned).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "malformed_auth")
    );

    let stale = signed_request(&alice(), "GET", "/whoami", b"", now - 11 * SECOND);
    let (status, body) = call(app.clone(), stale).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "stale_request")
    );

    let mut tampered = signed_request(&alice(), "POST", "/echo", b"one", now);
    *tampered.body_mut() = Body::from("two");
    let (status, body) = call(app.clone(), tampered).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "bad_signature")
    );
    assert!(!body.contains("0x"), "never echoes the signature: {body}");

    let mut for_alice = Request::builder().uri("/whoami");
    for (name, value) in sign_headers(
        &alice(),
        "GET",
        "/whoami",
        b"",
        Some(&alice().account_id()),
        now,
    ) {
        for_alice = for_alice.header(name, value);
    }
    let (status, body) = call(app.clone(), for_alice.body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "wrong_receiver")
    );

    let first = signed_request(&alice(), "GET", "/whoami", b"", now + 1);
    let replay = signed_request(&alice(), "GET", "/whoami", b"", now + 1);
    assert_eq!(call(app.clone(), first).await.0, StatusCode::OK);
    let (status, body) = call(app.clone(), replay).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "replayed_request")
    );

    let mut ed = signed_request(&alice(), "GET", "/whoami", b"", now + 2);
    ed.headers_mut()
        .insert(btauth::HEADER_CRYPTO, "ed25519".parse().unwrap());
    let (status, body) = call(app.clone(), ed).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "unsupported_crypto")
    );
}

#[tokio::test]
async fn unguarded_routes_stay_public() {
    let app = app(Guard::new(Verifier::new(bob().account_id())));
    let health = Request::builder()
        .uri("/health")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        call(app.clone(), health).await,
        (StatusCode::OK, "ok".to_owned())
    );
    let who = Request::builder()
        .uri("/unguarded-who")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(app, who).await, (StatusCode::OK, "false".to_owned()));
}

#[tokio::test]
async fn oversized_bodies_answer_413() {
    let app = app(Guard::new(Verifier::new(bob().account_id())).with_body_limit(16));
    let now = unix_now_ns();
    let request = signed_request(&alice(), "POST", "/echo", &[7u8; 17], now);
    let (status, body) = call(app.clone(), request).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    // A declared Content-Length over the limit is refused before reading (oneshot requests
    // carry none, so the request above went through the streaming limit).
    let mut declared = signed_request(&alice(), "POST", "/echo", &[7u8; 17], now + 1);
    declared
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, "17".parse().unwrap());
    let (status, _) = call(app.clone(), declared).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let fits = signed_request(&alice(), "POST", "/echo", &[7u8; 16], now + 2);
    assert_eq!(call(app, fits).await.0, StatusCode::OK);
}

#[tokio::test]
async fn authorizer_refusal_answers_403() {
    let alice_id = alice().account_id();
    let guard = Guard::new(Verifier::new(bob().account_id())).with_authorizer(
        move |caller: &Caller, _: &Method, path: &str| {
            if path.starts_with("/v1/validator-only") && caller.hotkey != alice_id {
                Err(Forbidden::new("hotkey has no validator permit"))
            } else {
                Ok(())
            }
        },
    );
    let app = app(guard);
    let now = unix_now_ns();
    let charlie = charlie();
    let refused = signed_request(&charlie, "GET", "/v1/validator-only?x=1", b"", now);
    let (status, body) = call(app.clone(), refused).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"error": "forbidden", "message": "hotkey has no validator permit"})
    );
    let allowed = signed_request(&alice(), "GET", "/v1/validator-only?x=1", b"", now);
    assert_eq!(call(app.clone(), allowed).await.0, StatusCode::OK);
    let other_route = signed_request(&charlie, "GET", "/whoami", b"", now + 1);
    assert_eq!(call(app, other_route).await.0, StatusCode::OK);
}

#[tokio::test]
async fn nested_routers_verify_the_original_target() {
    let inner = app(Guard::new(Verifier::new(bob().account_id())));
    let outer = Router::new().nest("/api", inner);
    let request = signed_request(&alice(), "GET", "/api/whoami?page=2", b"", unix_now_ns());
    let (status, body) = call(outer, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn guard_clock_drives_freshness() {
    let case = load_cases()
        .into_iter()
        .find(|c| c.name == "post_json")
        .unwrap();
    let now: u64 = case.verify_now_ns.parse().unwrap();
    let app = Router::new()
        .route(
            "/v1/generate",
            post(|VerifiedCaller(who): VerifiedCaller| async move { who.to_ss58() }),
        )
        .route_layer(from_fn_with_state(
            Guard::new(Verifier::new(
                AccountId::from_ss58(&case.verifier_hotkey).unwrap(),
            ))
            .with_clock(move || now),
            btauth::require,
        ));
    let mut request = Request::builder().method("POST").uri(&case.path);
    for (name, value) in &case.headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Body::from(hex::decode(&case.sent_body_hex).unwrap()))
        .unwrap();
    let (status, body) = call(app, request).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, case.headers["X-Bittensor-Hotkey"].as_str())
    );
}

#[tokio::test]
async fn signed_client_talks_to_a_real_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        axum::serve(listener, app(Guard::new(Verifier::new(bob().account_id())))).into_future(),
    );
    let client = SignedClient::new(reqwest::Client::new(), alice());
    let receiver = bob().account_id();
    for target in ["/whoami", "/whoami?", "/whoami?a=1&b=%20x", "/whoami?q=a b"] {
        let url = reqwest::Url::parse(&format!("http://{addr}{target}")).unwrap();
        let response = client.get(url, &receiver).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{target}");
        assert_eq!(
            response.text().await.unwrap(),
            alice().account_id().to_ss58()
        );
    }
    let url = reqwest::Url::parse(&format!("http://{addr}/echo")).unwrap();
    let response = client
        .post_json(url, &receiver, &serde_json::json!({"prompt": "héllo"}))
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), r#"{"prompt":"héllo"}"#);
    server.abort();
}

/// A caller the authorizer refuses (e.g. an unregistered hotkey) is answered 403 from its headers
/// alone: its body is never read, so idle or endless bodies cannot pile up in memory.
#[tokio::test]
async fn a_refused_caller_is_answered_before_its_body_is_read() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let guard = Guard::new(Verifier::new(bob().account_id())).with_authorizer(
        |caller: &Caller, _: &Method, _: &str| {
            if caller.hotkey == charlie().account_id() {
                Err(Forbidden::new("hotkey is not registered"))
            } else {
                Ok(())
            }
        },
    );
    let polled = std::sync::Arc::new(AtomicBool::new(false));
    let seen = std::sync::Arc::clone(&polled);
    // A body that never arrives, and tells whether anyone waited for it.
    let endless = axum::body::Body::from_stream(futures::stream::poll_fn(move |_| {
        seen.store(true, Ordering::SeqCst);
        std::task::Poll::<Option<Result<axum::body::Bytes, std::io::Error>>>::Pending
    }));
    let signed = signed_request(&charlie(), "POST", "/echo", &[1u8; 1024], unix_now_ns());
    let (parts, _) = signed.into_parts();
    let request = Request::from_parts(parts, endless);
    let (status, body) =
        tokio::time::timeout(std::time::Duration::from_secs(5), call(app(guard), request))
            .await
            .expect("answered without waiting for the body");
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!polled.load(Ordering::SeqCst), "the body was never read");
}

/// A permitted caller whose body trickles (or never comes) is answered 408 at the body timeout
/// instead of holding the connection and its buffer.
#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408() {
    let guard = Guard::new(Verifier::new(bob().account_id()))
        .with_body_timeout(std::time::Duration::from_millis(300));
    let endless = axum::body::Body::from_stream(futures::stream::pending::<
        Result<axum::body::Bytes, std::io::Error>,
    >());
    let (parts, _) = signed_request(&alice(), "POST", "/echo", b"{}", unix_now_ns()).into_parts();
    let started = std::time::Instant::now();
    let (status, body) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        call(app(guard), Request::from_parts(parts, endless)),
    )
    .await
    .expect("answered at the body timeout");
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(error_code(&body), "request_timeout");
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}
