//! The [`ChainClient`] trait the miner and validator talk to, and [`DevChainClient`], its
//! implementation over the dev chain's JSON-RPC ([`super::rpc`]).
//!
//! The trait is generic-friendly (`impl Future + Send` returns), so callers write
//! `async fn run<C: ChainClient>(chain: &C)`. The Subtensor client (`subnet_subtensor`)
//! implements it too: an extrinsic is prepared by the client, in its chain's own encoding, and
//! handed back as bytes and hash ([`PreparedTx`]), so a caller can record the hash before sending.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parity_scale_codec::Encode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::rpc::{self, H256, HeaderView, TxStatus, method};
use super::types::{
    AccountInfo, Call, Commitment, Hyperparameters, Metagraph, NetUid, SignedExtrinsic,
};
use crate::keys::{AccountId, Keypair};
use crate::timelock::WeightsTlockPayload;

/// How often [`ChainClient::wait_for_inclusion`] polls by default.
pub const INCLUSION_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Why a chain request failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainClientError {
    /// The chain URL does not parse.
    #[error("invalid chain url {url:?}: {reason}")]
    BadUrl {
        /// The rejected URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The request did not complete: connection refused, timeout, reset.
    #[error("{method}: request to {url} failed: {source}")]
    Transport {
        /// RPC method.
        method: &'static str,
        /// Chain URL.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The chain answered with an HTTP error and no JSON-RPC error object.
    #[error("{method}: HTTP {status} from {url}: {body}")]
    Http {
        /// RPC method.
        method: &'static str,
        /// Chain URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The response body was over the client's limit.
    #[error("{method}: response is over the {limit}-byte limit")]
    ResponseTooLarge {
        /// RPC method.
        method: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// The response was not the JSON the method promises.
    #[error("{method}: unexpected response: {reason}")]
    Decode {
        /// RPC method.
        method: &'static str,
        /// What did not fit.
        reason: String,
    },
    /// The chain answered with a JSON-RPC error (see [`rpc::code`]).
    #[error("{method}: chain error {code}: {message}")]
    Rpc {
        /// RPC method.
        method: &'static str,
        /// JSON-RPC error code.
        code: i64,
        /// The chain's message.
        message: String,
    },
    /// The extrinsic was accepted but failed when the block was built.
    #[error("extrinsic {tx} failed in block {block}: {error}")]
    ExtrinsicFailed {
        /// The extrinsic.
        tx: H256,
        /// Block whose production tried it.
        block: u64,
        /// The chain's reason.
        error: String,
    },
    /// This chain has no such call (e.g. dev-chain administration sent to Subtensor).
    #[error("{call} is not a call this chain accepts: {reason}")]
    Unsupported {
        /// The call's name.
        call: &'static str,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The extrinsic was not included in time.
    #[error("extrinsic {tx} was not included within {waited:?}")]
    InclusionTimeout {
        /// The extrinsic.
        tx: H256,
        /// How long we waited.
        waited: Duration,
    },
    /// The chain does not know the extrinsic (dropped, e.g. by a node restart).
    #[error("extrinsic {tx} is unknown to the chain (dropped?)")]
    UnknownExtrinsic {
        /// The extrinsic.
        tx: H256,
    },
}

impl ChainClientError {
    /// The JSON-RPC error code, when the chain answered with one.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            Self::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Where an extrinsic was included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inclusion {
    /// The extrinsic.
    pub tx: H256,
    /// Block number.
    pub block: u64,
    /// Block hash.
    pub block_hash: H256,
    /// Position inside the block.
    pub index: u32,
}

/// A signed extrinsic in one chain's encoding, not yet sent: what [`ChainClient::prepare`]
/// returns and [`ChainClient::submit_prepared`] sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedTx {
    /// The call's name, for logs.
    pub call: &'static str,
    /// The signer's nonce it carries.
    pub nonce: u64,
    /// The encoded extrinsic.
    pub bytes: Vec<u8>,
    /// The hash the chain knows it by.
    pub hash: H256,
}

/// A timelocked weight commit (commit–reveal v4) ready to sign, and the beacon round it opens at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelockedCommit {
    /// `commit_timelocked_weights` with the encrypted weights.
    pub call: Call,
    /// The round whose beacon signature decrypts them.
    pub reveal_round: u64,
}

impl TimelockedCommit {
    /// `payload` sealed for `netuid`: encrypted to `reveal_round` of the beacon with
    /// `public_key`, in a `commit_timelocked_weights` of commit–reveal version `version`.
    pub fn seal(
        netuid: NetUid,
        payload: &WeightsTlockPayload,
        reveal_round: u64,
        version: u16,
        public_key: &[u8],
    ) -> Result<Self, ChainClientError> {
        let commit = crate::timelock::encrypt(&payload.encode(), reveal_round, public_key)
            .map_err(|e| ChainClientError::Decode {
                method: "timelock",
                reason: e.to_string(),
            })?;
        Ok(Self {
            call: Call::CommitTimelockedWeights {
                netuid,
                commit,
                reveal_round,
                commit_reveal_version: version,
            },
            reveal_round,
        })
    }
}

/// What the miner and validator need from a chain.
pub trait ChainClient: Send + Sync {
    /// The chain's genesis hash (signed into every extrinsic).
    fn genesis_hash(&self) -> impl Future<Output = Result<H256, ChainClientError>> + Send;

    /// The best block's header.
    fn head(&self) -> impl Future<Output = Result<HeaderView, ChainClientError>> + Send;

    /// Hash of block `number`, `None` when it does not exist yet.
    fn block_hash(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<Option<H256>, ChainClientError>> + Send;

    /// The subnet's metagraph at the best block.
    fn metagraph(
        &self,
        netuid: NetUid,
    ) -> impl Future<Output = Result<Metagraph, ChainClientError>> + Send;

    /// The subnet's hyperparameters at the best block.
    fn hyperparameters(
        &self,
        netuid: NetUid,
    ) -> impl Future<Output = Result<Hyperparameters, ChainClientError>> + Send;

    /// Every commitment stored on the subnet.
    fn commitments(
        &self,
        netuid: NetUid,
    ) -> impl Future<Output = Result<Vec<Commitment>, ChainClientError>> + Send;

    /// Every commitment stored on the subnet in the state after the block `at`: what a reader
    /// at any later head agrees on.
    fn commitments_at(
        &self,
        netuid: NetUid,
        at: H256,
    ) -> impl Future<Output = Result<Vec<Commitment>, ChainClientError>> + Send;

    /// Balance and nonce of `account`.
    fn account(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<AccountInfo, ChainClientError>> + Send;

    /// Signs `call` with `signer` at its next nonce (counting extrinsics still queued) in this
    /// chain's encoding; nothing is sent.
    fn prepare(
        &self,
        call: Call,
        signer: &Keypair,
    ) -> impl Future<Output = Result<PreparedTx, ChainClientError>> + Send;

    /// Sends a prepared extrinsic; returns its hash once the chain has accepted it into its queue.
    fn submit_prepared(
        &self,
        tx: &PreparedTx,
    ) -> impl Future<Output = Result<H256, ChainClientError>> + Send;

    /// Prepares `call` signed by `signer` and sends it; returns the extrinsic hash once queued.
    fn submit(
        &self,
        call: Call,
        signer: &Keypair,
    ) -> impl Future<Output = Result<H256, ChainClientError>> + Send {
        async move {
            let tx = self.prepare(call, signer).await?;
            self.submit_prepared(&tx).await
        }
    }

    /// Whether `netuid` takes weights as timelocked commits (commit–reveal v4) now: then they go
    /// through [`ChainClient::timelocked_commit`] and the chain reveals them by itself; else
    /// through `commit_weights` and `reveal_weights`, or `set_weights`, as the subnet's
    /// hyperparameters say. The dev chain takes none.
    fn timelocked_weights(
        &self,
        netuid: NetUid,
    ) -> impl Future<Output = Result<bool, ChainClientError>> + Send {
        let _ = netuid;
        async { Ok(false) }
    }

    /// `hotkey`'s weights as a timelocked commit, encrypted to the beacon round at which the
    /// chain reveals a commit sent now.
    fn timelocked_commit(
        &self,
        netuid: NetUid,
        hotkey: &AccountId,
        uids: &[u16],
        weights: &[u16],
        version_key: u64,
    ) -> impl Future<Output = Result<TimelockedCommit, ChainClientError>> + Send {
        let _ = (netuid, hotkey, uids, weights, version_key);
        async {
            Err(ChainClientError::Unsupported {
                call: "commit_timelocked_weights",
                reason: "this chain takes no timelocked weight commits".into(),
            })
        }
    }

    /// Where the extrinsic `tx` is now.
    fn tx_status(
        &self,
        tx: H256,
    ) -> impl Future<Output = Result<TxStatus, ChainClientError>> + Send;

    /// How often [`ChainClient::wait_for_inclusion`] asks (a remote node is asked less often).
    fn inclusion_poll_interval(&self) -> Duration {
        INCLUSION_POLL_INTERVAL
    }

    /// Polls [`ChainClient::tx_status`] until `tx` is included, fails, is dropped or `timeout` passes.
    fn wait_for_inclusion(
        &self,
        tx: H256,
        timeout: Duration,
    ) -> impl Future<Output = Result<Inclusion, ChainClientError>> + Send {
        async move {
            let start = Instant::now();
            loop {
                match self.tx_status(tx).await? {
                    TxStatus::InBlock {
                        block,
                        block_hash,
                        index,
                    } => {
                        return Ok(Inclusion {
                            tx,
                            block,
                            block_hash,
                            index,
                        });
                    }
                    TxStatus::Failed { block, error } => {
                        return Err(ChainClientError::ExtrinsicFailed { tx, block, error });
                    }
                    TxStatus::Unknown => return Err(ChainClientError::UnknownExtrinsic { tx }),
                    TxStatus::Pending => {}
                }
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(ChainClientError::InclusionTimeout { tx, waited });
                }
                tokio::time::sleep(self.inclusion_poll_interval().min(timeout - waited)).await;
            }
        }
    }
}

/// Limits of a [`DevChainClient`].
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_response_bytes: 16 * 1024 * 1024,
        }
    }
}

/// JSON-RPC 2.0 over HTTP with the limits of [`ClientOptions`]: each call has a timeout, each
/// answer a size limit, and errors name the method. The dev chain's client and the Subtensor
/// client both talk through it.
#[derive(Debug)]
pub struct JsonRpcHttp {
    http: reqwest::Client,
    url: reqwest::Url,
    max_response_bytes: usize,
    next_id: AtomicU64,
}

impl JsonRpcHttp {
    /// A transport to the node at `url` (`http://` or `https://`) with the given limits.
    pub fn new(url: &str, options: ClientOptions) -> Result<Self, ChainClientError> {
        let bad = |reason: String| ChainClientError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad(format!(
                "scheme {:?} is not http or https",
                parsed.scheme()
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| bad(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            url: parsed,
            max_response_bytes: options.max_response_bytes,
            next_id: AtomicU64::new(1),
        })
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// One JSON-RPC call; `"result": null` is a valid answer (e.g. an unknown block), a missing
    /// result is not.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, ChainClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let transport = |source| ChainClientError::Transport {
            method,
            url: self.url.to_string(),
            source,
        };
        let mut response = self
            .http
            .post(self.url.clone())
            .json(&request)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let too_large = ChainClientError::ResponseTooLarge {
            method,
            limit: self.max_response_bytes,
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        let http_error = || ChainClientError::Http {
            method,
            url: self.url.to_string(),
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        };
        let decode = |reason: String| ChainClientError::Decode { method, reason };
        let mut response: serde_json::Map<String, Value> = match serde_json::from_slice(&body) {
            Ok(response) => response,
            Err(_) if !status.is_success() => return Err(http_error()),
            Err(e) => return Err(decode(format!("not a JSON-RPC response: {e}"))),
        };
        if let Some(error) = response.remove("error").filter(|e| !e.is_null()) {
            let error: rpc::ErrorObject = serde_json::from_value(error)
                .map_err(|e| decode(format!("malformed error object: {e}")))?;
            return Err(ChainClientError::Rpc {
                method,
                code: error.code,
                message: error.message,
            });
        }
        if !status.is_success() {
            return Err(http_error());
        }
        let result = response
            .remove("result")
            .ok_or_else(|| decode("response has neither result nor error".into()))?;
        serde_json::from_value(result).map_err(|e| decode(e.to_string()))
    }
}

/// A [`ChainClient`] for the dev chain's JSON-RPC over HTTP.
#[derive(Debug)]
pub struct DevChainClient {
    rpc: JsonRpcHttp,
    /// Fetched once; a chain's genesis never changes.
    genesis: OnceLock<H256>,
    /// The beacon's public key, fetched once.
    beacon: OnceLock<Vec<u8>>,
}

impl DevChainClient {
    /// A client for the node at `url` (e.g. `http://127.0.0.1:9944`) with default limits.
    pub fn new(url: &str) -> Result<Self, ChainClientError> {
        Self::with_options(url, ClientOptions::default())
    }

    /// A client for the node at `url` with the given limits.
    pub fn with_options(url: &str, options: ClientOptions) -> Result<Self, ChainClientError> {
        Ok(Self {
            rpc: JsonRpcHttp::new(url, options)?,
            genesis: OnceLock::new(),
            beacon: OnceLock::new(),
        })
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        self.rpc.url()
    }

    /// The next nonce of `account`, counting extrinsics still queued on the node.
    pub async fn next_nonce(&self, account: &AccountId) -> Result<u64, ChainClientError> {
        self.call(method::ACCOUNT_NEXT_INDEX, json!([account.to_ss58()]))
            .await
    }

    /// A block by number, `None` when it does not exist.
    pub async fn block(&self, number: u64) -> Result<Option<rpc::BlockView>, ChainClientError> {
        self.call(method::BLOCK, json!([number])).await
    }

    /// Submits already-encoded extrinsic bytes; returns the hash the chain reports.
    pub async fn submit_raw(&self, extrinsic: &[u8]) -> Result<H256, ChainClientError> {
        let hex = format!("0x{}", hex::encode(extrinsic));
        let tx: H256 = self.call(method::SUBMIT, json!([hex])).await?;
        let expected = H256(Sha256::digest(extrinsic).into());
        if tx != expected {
            return Err(ChainClientError::Decode {
                method: method::SUBMIT,
                reason: format!("chain returned hash {tx}, the extrinsic hashes to {expected}"),
            });
        }
        Ok(tx)
    }

    /// The public key of the chain's beacon (`subnet_beacon`).
    pub async fn beacon_public_key(&self) -> Result<Vec<u8>, ChainClientError> {
        if let Some(key) = self.beacon.get() {
            return Ok(key.clone());
        }
        #[derive(serde::Deserialize)]
        struct Beacon {
            public_key: String,
        }
        let answer: Beacon = self.call(method::BEACON, json!([])).await?;
        let key = hex::decode(answer.public_key.trim_start_matches("0x")).map_err(|e| {
            ChainClientError::Decode {
                method: method::BEACON,
                reason: format!("public key is not hex: {e}"),
            }
        })?;
        Ok(self.beacon.get_or_init(|| key).clone())
    }

    /// One JSON-RPC call.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, ChainClientError> {
        self.rpc.call(method, params).await
    }
}

impl ChainClient for DevChainClient {
    async fn genesis_hash(&self) -> Result<H256, ChainClientError> {
        if let Some(hash) = self.genesis.get() {
            return Ok(*hash);
        }
        let hash: H256 = self.call(method::GENESIS_HASH, json!([])).await?;
        Ok(*self.genesis.get_or_init(|| hash))
    }

    async fn head(&self) -> Result<HeaderView, ChainClientError> {
        self.call(method::HEAD, json!([])).await
    }

    async fn block_hash(&self, number: u64) -> Result<Option<H256>, ChainClientError> {
        self.call(method::BLOCK_HASH, json!([number])).await
    }

    async fn metagraph(&self, netuid: NetUid) -> Result<Metagraph, ChainClientError> {
        self.call(method::METAGRAPH, json!([netuid])).await
    }

    async fn hyperparameters(&self, netuid: NetUid) -> Result<Hyperparameters, ChainClientError> {
        self.call(method::HYPERPARAMETERS, json!([netuid])).await
    }

    async fn commitments(&self, netuid: NetUid) -> Result<Vec<Commitment>, ChainClientError> {
        self.call(method::COMMITMENTS, json!([netuid])).await
    }

    async fn commitments_at(
        &self,
        netuid: NetUid,
        at: H256,
    ) -> Result<Vec<Commitment>, ChainClientError> {
        self.call(method::COMMITMENTS_AT, json!([netuid, at])).await
    }

    async fn account(&self, account: &AccountId) -> Result<AccountInfo, ChainClientError> {
        self.call(method::ACCOUNT_INFO, json!([account.to_ss58()]))
            .await
    }

    async fn prepare(&self, call: Call, signer: &Keypair) -> Result<PreparedTx, ChainClientError> {
        let genesis = self.genesis_hash().await?;
        let nonce = self.next_nonce(&signer.account_id()).await?;
        let name = call.name();
        let bytes = SignedExtrinsic::sign(call, nonce, &genesis.0, signer).encode();
        Ok(PreparedTx {
            call: name,
            nonce,
            hash: H256(Sha256::digest(&bytes).into()),
            bytes,
        })
    }

    async fn submit_prepared(&self, tx: &PreparedTx) -> Result<H256, ChainClientError> {
        self.submit_raw(&tx.bytes).await
    }

    async fn tx_status(&self, tx: H256) -> Result<TxStatus, ChainClientError> {
        self.call(method::EXTRINSIC_STATUS, json!([tx])).await
    }

    async fn timelocked_weights(&self, netuid: NetUid) -> Result<bool, ChainClientError> {
        let hp = self.hyperparameters(netuid).await?;
        Ok(hp.commit_reveal_weights_enabled && hp.commit_reveal_version == DEV_TIMELOCK_VERSION)
    }

    /// The dev chain publishes beacon round `r` at block `r` and opens a commit at the first
    /// block of its reveal epoch whose round is out: so the round to encrypt to is the first
    /// block of the reveal epoch of a commit landing in the next block.
    async fn timelocked_commit(
        &self,
        netuid: NetUid,
        hotkey: &AccountId,
        uids: &[u16],
        weights: &[u16],
        version_key: u64,
    ) -> Result<TimelockedCommit, ChainClientError> {
        let hp = self.hyperparameters(netuid).await?;
        if !(hp.commit_reveal_weights_enabled && hp.commit_reveal_version == DEV_TIMELOCK_VERSION) {
            return Err(ChainClientError::Unsupported {
                call: "commit_timelocked_weights",
                reason: format!(
                    "subnet {netuid} takes no timelocked commits now (commit-reveal off, or \
                     version {})",
                    hp.commit_reveal_version
                ),
            });
        }
        let head = self.head().await?;
        let cycle = u64::from(hp.tempo) + 1;
        let offset = u64::from(netuid) + 1;
        let landed = head.number + 1;
        let reveal_epoch = (landed + offset) / cycle + hp.commit_reveal_period;
        let reveal_round = (reveal_epoch * cycle)
            .saturating_sub(offset)
            .max(landed + 1);
        let payload =
            WeightsTlockPayload::new(hotkey, uids.to_vec(), weights.to_vec(), version_key);
        let public_key = self.beacon_public_key().await?;
        TimelockedCommit::seal(
            netuid,
            &payload,
            reveal_round,
            DEV_TIMELOCK_VERSION,
            &public_key,
        )
    }
}

/// The commit–reveal version whose commits are timelocked.
const DEV_TIMELOCK_VERSION: u16 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_urls_that_are_not_http() {
        assert!(matches!(
            DevChainClient::new("ftp://x"),
            Err(ChainClientError::BadUrl { .. })
        ));
        assert!(matches!(
            DevChainClient::new("not a url"),
            Err(ChainClientError::BadUrl { .. })
        ));
        assert!(DevChainClient::new("http://127.0.0.1:9944").is_ok());
    }

    /// Serves `body` with `status` to every POST on a fresh loopback port.
    async fn fake_node(status: u16, body: &'static str) -> String {
        use axum::http::StatusCode;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status = StatusCode::from_u16(status).unwrap();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || async move { (status, body) }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_response_over_the_limit_is_refused() {
        let url = fake_node(
            200,
            r#"{"jsonrpc":"2.0","id":1,"result":"0123456789012345678901234567890123456789"}"#,
        )
        .await;
        let options = ClientOptions {
            max_response_bytes: 32,
            ..ClientOptions::default()
        };
        let client = DevChainClient::with_options(&url, options).unwrap();
        let err = client.block_hash(1).await.unwrap_err();
        assert!(
            matches!(err, ChainClientError::ResponseTooLarge { limit: 32, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn json_rpc_errors_keep_code_and_message_even_with_an_http_error_status() {
        let url = fake_node(
            429,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"slow down"}}"#,
        )
        .await;
        let err = DevChainClient::new(&url).unwrap().head().await.unwrap_err();
        assert_eq!(err.rpc_code(), Some(rpc::code::RATE_LIMITED));
        assert!(err.to_string().contains("slow down"), "{err}");
    }

    #[tokio::test]
    async fn a_non_json_error_page_is_an_http_error_with_its_status() {
        let url = fake_node(502, "<html>bad gateway</html>").await;
        let err = DevChainClient::new(&url).unwrap().head().await.unwrap_err();
        assert!(
            matches!(err, ChainClientError::Http { status: 502, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn null_is_a_result_but_a_missing_result_is_not() {
        let url = fake_node(200, r#"{"jsonrpc":"2.0","id":1,"result":null}"#).await;
        assert_eq!(
            DevChainClient::new(&url)
                .unwrap()
                .block_hash(9)
                .await
                .unwrap(),
            None
        );
        let url = fake_node(200, r#"{"jsonrpc":"2.0","id":1}"#).await;
        let err = DevChainClient::new(&url)
            .unwrap()
            .block_hash(9)
            .await
            .unwrap_err();
        assert!(matches!(err, ChainClientError::Decode { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_transport_error_naming_the_method() {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = DevChainClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let err = client.head().await.unwrap_err();
        assert!(
            matches!(
                err,
                ChainClientError::Transport {
                    method: "chain_getHead",
                    ..
                }
            ),
            "{err}"
        );
    }
}
