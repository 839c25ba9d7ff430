//! `validator query`: one signed request, response body to stdout.

use std::{io::Write, time::Duration};

use anyhow::{Context, bail};
use subnet_common::btauth::SignedClient;

use crate::cli::QueryArgs;

/// Most bytes of a response body printed; larger answers are refused.
const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Sends the request; writes the body to `out`. A non-2xx answer is an error carrying the status
/// (the body is still written, so the server's JSON error is visible).
pub async fn run(args: &QueryArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let method_name = args
        .method
        .clone()
        .unwrap_or_else(|| if args.data.is_some() { "POST" } else { "GET" }.to_string())
        .to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method_name.as_bytes())
        .with_context(|| format!("--method {method_name:?} is not an HTTP method"))?;
    let body = match &args.data {
        Some(data) => {
            serde_json::from_str::<serde_json::Value>(data).context("--data is not valid JSON")?;
            data.clone().into_bytes()
        }
        None => Vec::new(),
    };
    let keypair = args.wallet.load_hotkey()?;
    // A miner's redirect is shown, not followed: it would take our signature elsewhere.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(args.timeout_secs))
        .build()
        .context("while building the HTTP client")?;
    let client = SignedClient::new(http, keypair);
    let mut request = client.request(method, args.url.clone(), &args.receiver, body);
    if args.data.is_some() {
        request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
    }
    let mut response = request
        .send()
        .await
        .with_context(|| format!("while sending to {}", args.url))?;
    let status = response.status();
    let mut received = 0usize;
    while let Some(chunk) = response
        .chunk()
        .await
        .context("while reading the response")?
    {
        received += chunk.len();
        if received > MAX_RESPONSE_BYTES {
            bail!("response larger than {MAX_RESPONSE_BYTES} bytes; refused");
        }
        out.write_all(&chunk)
            .context("while writing the response")?;
    }
    writeln!(out).context("while writing the response")?;
    if !status.is_success() {
        bail!("server answered {status}");
    }
    Ok(())
}
