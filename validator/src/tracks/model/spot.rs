//! Spot-checks: does the miner serve the model it committed?
//!
//! Each epoch every candidate (at most [`SpotSettings::per_epoch`]) is asked, over btauth/1, for
//! a greedy continuation (`POST /v1/generate`, temperature 0) of a prompt; the answer is then
//! verified against the downloaded artifact ([`subnet_model::generate::verify_greedy`]). A mismatch
//! zeroes the miner's score: it serves something other than what it committed, which is
//! cheating. A miner without the route (404, 405, 501), or one that does not answer in time or
//! answers garbage, fails the check too (recorded with the reason, score 0 for the epoch) unless
//! [`SpotSettings::required`] is turned off, when it is only `unavailable`.
//!
//! Which miners are checked and each one's prompt come from a secret the validator draws fresh
//! each epoch ([`crate::tracks::labels::fresh_secret`]), not from the public epoch seed: the
//! prompt is a prefix of one of the epoch's samples, cut at a secret length, so a miner cannot
//! have the committed model's answers ready while serving something else.

use std::collections::BTreeSet;
use std::time::Duration;

use subnet_common::btauth::SignedClient;
use subnet_common::keys::AccountId;
use subnet_common::protocol::{GenerateRequest, GenerateResponse};
use subnet_model::competition::derive_seed;
use subnet_model::eval::Sample;
use subnet_model::tasks::{seeded_rng, shuffle, uniform_below};

/// [`derive_seed`] purpose of the spot-check draws.
pub const SPOT_PURPOSE: &str = "model-track/spot-check";

/// How spot-checks are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotSettings {
    /// Most miners checked per epoch (0 disables spot-checks).
    pub per_epoch: usize,
    /// Tokens asked for.
    pub max_new_tokens: usize,
    /// Time allowed for the whole request.
    pub timeout: Duration,
    /// Largest answer body read.
    pub max_response_bytes: usize,
    /// Whether an unavailable spot-check counts as failed.
    pub required: bool,
}

impl Default for SpotSettings {
    /// Every miner, 16 tokens, 30 s, 64 KiB answers, required.
    fn default() -> Self {
        Self {
            per_epoch: usize::MAX,
            max_new_tokens: 16,
            timeout: Duration::from_secs(30),
            max_response_bytes: 64 * 1024,
            required: true,
        }
    }
}

/// The uids checked this epoch: `per_epoch` of `uids`, drawn from the validator's epoch
/// `secret` so that no miner knows in advance whether it is checked.
pub fn select(secret: [u8; 32], uids: &[u16], per_epoch: usize) -> BTreeSet<u16> {
    let mut uids: Vec<u16> = uids.to_vec();
    uids.sort_unstable();
    uids.dedup();
    let mut rng = seeded_rng(derive_seed(secret, SPOT_PURPOSE));
    shuffle(&mut uids, &mut rng);
    uids.into_iter().take(per_epoch).collect()
}

/// The spot-check prompt of miner `uid`: one sample, drawn from the validator's epoch `secret`
/// and the uid, cut after a drawn number of tokens between 1 and its whole prompt and
/// completion but the last token. `None` when there are no samples.
pub fn prompt(secret: [u8; 32], uid: u16, samples: &[Sample]) -> Option<Vec<u32>> {
    let purpose = format!("prompt/{uid}");
    let mut rng = seeded_rng(derive_seed(derive_seed(secret, SPOT_PURPOSE), &purpose));
    let index = uniform_below(&mut rng, samples.len() as u64);
    let sample = samples.get(usize::try_from(index).ok()?)?;
    let longest = sample.input_ids.len().saturating_sub(1).max(1);
    let cut = 1 + uniform_below(&mut rng, longest as u64) as usize;
    Some(sample.input_ids[..cut.min(sample.input_ids.len())].to_vec())
}

/// What asking a miner for a greedy continuation gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// The miner answered these ids.
    Answered(Vec<u32>),
    /// No usable answer: the reason.
    Unavailable(String),
}

/// How often a miner that answers 503 (busy: it generates one request at a time, and every
/// validator asks it each epoch) is asked again, after a pause of 1 to 4 s, before the check
/// counts as unanswered.
pub const BUSY_RETRIES: u32 = 3;

/// Asks the miner at `base_url` for a greedy continuation of `prompt`; a busy miner (HTTP 503)
/// is asked again up to [`BUSY_RETRIES`] times.
pub async fn ask(
    client: &SignedClient,
    base_url: &reqwest::Url,
    miner: &AccountId,
    prompt: &[u32],
    settings: &SpotSettings,
) -> Asked {
    let mut tries = 0;
    loop {
        match ask_once(client, base_url, miner, prompt, settings).await {
            Asked::Unavailable(reason) if reason.contains(BUSY) && tries < BUSY_RETRIES => {
                tries += 1;
                let pause = rand::Rng::gen_range(&mut rand::thread_rng(), 1000..4000);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            asked => return asked,
        }
    }
}

/// The reason [`ask_once`] gives for an HTTP 503.
const BUSY: &str = "answered HTTP 503 (busy)";

/// One request of [`ask`].
async fn ask_once(
    client: &SignedClient,
    base_url: &reqwest::Url,
    miner: &AccountId,
    prompt: &[u32],
    settings: &SpotSettings,
) -> Asked {
    let url = match base_url.join("v1/generate") {
        Ok(url) => url,
        Err(error) => return Asked::Unavailable(format!("bad axon URL: {error}")),
    };
    let request = GenerateRequest {
        prompt: None,
        input_ids: Some(prompt.to_vec()),
        messages: None,
        max_new_tokens: u32::try_from(settings.max_new_tokens).unwrap_or(u32::MAX),
        temperature: 0.0,
        seed: 0,
    };
    let builder = match client.post_json(url, miner, &request) {
        Ok(builder) => builder.timeout(settings.timeout),
        Err(error) => return Asked::Unavailable(format!("encoding the request: {error}")),
    };
    let exchange = async {
        let mut response = builder.send().await.map_err(|e| describe(&e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!(
                "/v1/generate answered a redirect (HTTP {}); redirects are not followed",
                status.as_u16()
            ));
        }
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Err(format!("/v1/generate {BUSY}"));
        }
        if !status.is_success() {
            return Err(format!("/v1/generate answered HTTP {}", status.as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
            if body.len() + chunk.len() > settings.max_response_bytes {
                return Err(format!("answer over {} bytes", settings.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice::<GenerateResponse>(&body)
            .map(|answer| answer.output_ids)
            .map_err(|e| format!("answer is not a generate response: {e}"))
    };
    // reqwest's timeout covers the body too; this outer one guards a trickling server anyway.
    match tokio::time::timeout(settings.timeout + Duration::from_secs(1), exchange).await {
        Ok(Ok(ids)) => Asked::Answered(ids),
        Ok(Err(reason)) => Asked::Unavailable(reason),
        Err(_) => Asked::Unavailable(format!("no answer within {:?}", settings.timeout)),
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_string()
    } else {
        format!("request failed: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::{Json, Router, http::StatusCode, response::IntoResponse, routing::post};
    use subnet_common::keys::Keypair;

    /// A `/v1/generate` that answers 503 `busy` times, then the ids [1, 2, 3].
    async fn busy_then_answering(busy: u32) -> (reqwest::Url, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&calls);
        let app = Router::new().route(
            "/v1/generate",
            post(move || {
                let counter = Arc::clone(&counter);
                async move {
                    if counter.fetch_add(1, Ordering::SeqCst) < busy {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    Json(GenerateResponse {
                        output_ids: vec![1, 2, 3],
                        text: String::new(),
                    })
                    .into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (reqwest::Url::parse(&url).unwrap(), calls)
    }

    #[tokio::test]
    async fn a_busy_miner_is_asked_again_and_a_miner_busy_every_time_is_unanswered() {
        let client = SignedClient::new(
            reqwest::Client::new(),
            Keypair::from_uri("//Alice").unwrap(),
        );
        let miner = Keypair::from_uri("//Miner1").unwrap().account_id();
        let settings = SpotSettings {
            timeout: Duration::from_secs(5),
            ..SpotSettings::default()
        };
        let (url, calls) = busy_then_answering(1).await;
        let asked = ask(&client, &url, &miner, &[1], &settings).await;
        assert_eq!(asked, Asked::Answered(vec![1, 2, 3]));
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let (url, calls) = busy_then_answering(u32::MAX).await;
        let asked = ask(&client, &url, &miner, &[1], &settings).await;
        assert!(
            matches!(&asked, Asked::Unavailable(r) if r.contains("503")),
            "{asked:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), BUSY_RETRIES + 1);
    }

    #[test]
    fn selection_is_seeded_bounded_and_order_independent() {
        let uids = [5, 1, 9, 3, 7, 2];
        let a = select([1; 32], &uids, 3);
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|u| uids.contains(u)));
        assert_eq!(a, select([1; 32], &[2, 7, 3, 9, 1, 5, 5], 3));
        assert_eq!(select([1; 32], &uids, 100).len(), 6);
        assert!(select([1; 32], &uids, 0).is_empty());
        let differs = (0..8u8).any(|b| select([b; 32], &uids, 3) != a);
        assert!(differs, "different seeds pick different miners");
    }

    #[test]
    fn the_prompt_is_a_secret_prefix_of_a_sample() {
        let samples = vec![
            Sample {
                input_ids: vec![256, 1, 2, 3, 257],
                completion_start: 3,
            },
            Sample {
                input_ids: vec![256, 9, 8, 257],
                completion_start: 2,
            },
        ];
        let p = prompt([4; 32], 3, &samples).unwrap();
        let is_prefix = |s: &Sample| {
            !p.is_empty() && p.len() < s.input_ids.len() && s.input_ids.starts_with(&p)
        };
        assert!(samples.iter().any(is_prefix), "{p:?}");
        assert_eq!(prompt([4; 32], 3, &samples), Some(p.clone()));
        assert_eq!(prompt([4; 32], 3, &[]), None);
        // other secrets and other miners get other prompts
        let prompts: BTreeSet<Vec<u32>> = (0..16u8)
            .flat_map(|b| {
                [
                    prompt([b; 32], 3, &samples),
                    prompt([4; 32], u16::from(b), &samples),
                ]
            })
            .flatten()
            .collect();
        assert!(prompts.len() > 3, "{prompts:?}");
    }
}
