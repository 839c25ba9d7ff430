//! Downloading a miner's model artifact, checked against its on-chain commitment, into a cache
//! keyed by manifest hash.
//!
//! [`fetch_artifact`] trusts nothing the miner sends:
//! 1. the manifest is read with a size limit, its hash recomputed, bound to the miner's hotkey
//!    and compared with the commitment's binding ([`FetchError::HashMismatch`];
//!    [`ModelCommitment`]), every epoch, even when the artifact is cached: a miner that stopped
//!    serving (or serves another model) is `unreachable` (or a mismatch) for the epoch instead of
//!    being scored from the validator's copy, and a front-runner that committed another hotkey's
//!    commitment bytes is a mismatch whatever it serves;
//! 2. a complete cache entry `cache_dir/<manifest_sha256>/` is then reused without downloading
//!    a file;
//! 3. file names, count, per-file and total sizes are checked *before* any file is downloaded
//!    ([`FetchError::Malformed`], [`FetchError::TooLarge`]);
//! 4. each file is streamed to a staging directory while hashed, aborting as soon as more bytes
//!    than declared arrive; its sha256 must match the manifest. A connection that breaks or
//!    stalls mid-file after progress is resumed with `Range` (a few times, within the deadline);
//!    partial files never outlive the call;
//! 5. only then is the staging directory renamed into place, so a cache entry is either
//!    complete or absent (a failed or cancelled fetch leaves nothing behind).
//!
//! Every request has a timeout to its response headers and between body chunks, the whole fetch
//! has a deadline, and after a short grace the transfer must keep up a minimum throughput
//! ([`Limits::min_bytes_per_sec`]): a miner trickling a byte every few seconds is cut off within
//! seconds ([`FetchError::TooSlow`]), not at the deadline. Redirects are never followed (build
//! the client with [`miner_http_client`]); a 3xx is [`FetchError::Redirect`], and its target is
//! neither visited nor recorded. Every body byte received from a miner (manifest, files, bytes later thrown
//! away) counts in `validator_download_bytes_total`. A misbehaving miner is data: each [`FetchError`] maps to a recorded
//! outcome code ([`FetchError::outcome`]). The manifest's `competition` is not covered by its hash:
//! callers compare it with the commitment's competition themselves.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use sha2::{Digest, Sha256};
use subnet_common::{
    btauth::SignedClient,
    keys::AccountId,
    protocol::{
        Manifest, ManifestFile, ModelCommitment, OPTIONAL_FILES, REQUIRED_FILES, is_sha256_hex,
    },
};
use tokio::io::AsyncWriteExt;

/// Name of the manifest copy kept in each cache entry.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Bounds on what a fetch accepts and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest manifest body read.
    pub max_manifest_bytes: usize,
    /// Largest single file (see [`Limits::for_artifacts_of`]).
    pub max_file_bytes: u64,
    /// Largest sum of file sizes (the competition's `max_artifact_bytes`).
    pub max_total_bytes: u64,
    /// Time from sending a request to its response headers (connecting included).
    pub request_timeout: Duration,
    /// Longest wait for the next chunk of a response body.
    pub read_timeout: Duration,
    /// The whole fetch: manifest and every file.
    pub deadline: Duration,
    /// Range requests allowed per file to resume after a broken or stalled connection.
    pub max_resumes: u32,
    /// Slowest transfer accepted once [`Limits::throughput_grace`] has passed: the fetch must have
    /// received `min_bytes_per_sec × (elapsed − grace)` bytes at every moment (0: no floor).
    pub min_bytes_per_sec: u64,
    /// Time a fetch gets before the throughput floor applies (connecting, the first bytes).
    pub throughput_grace: Duration,
}

impl Limits {
    /// These limits for a competition that admits artifacts of `max_artifact_bytes` in all: the
    /// bound on the sum, and on each file, is the competition's, so one file may be as large as
    /// the competition allows the whole (SmolLM2's f32 weights are one 538 MB file, over the
    /// 256 MiB default).
    pub fn for_artifacts_of(mut self, max_artifact_bytes: u64) -> Self {
        self.max_total_bytes = max_artifact_bytes;
        self.max_file_bytes = max_artifact_bytes;
        self
    }
}

impl Default for Limits {
    /// 64 KiB manifests, 256 MiB artifacts, 10 s per request or stalled read, 10 min in all,
    /// 3 resumes per file, at least 1 MiB/s after a 10 s grace.
    fn default() -> Self {
        Self {
            max_manifest_bytes: 64 * 1024,
            max_file_bytes: 256 << 20,
            max_total_bytes: 256 << 20,
            request_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(600),
            max_resumes: 3,
            min_bytes_per_sec: 1 << 20,
            throughput_grace: Duration::from_secs(10),
        }
    }
}

/// A verified artifact on local disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedArtifact {
    /// `cache_dir/<manifest_sha256>/`, holding the files and [`MANIFEST_FILE`].
    pub dir: PathBuf,
    /// The verified manifest.
    pub manifest: Manifest,
    /// True when the entry was already cached (no network call was made).
    pub from_cache: bool,
}

impl CachedArtifact {
    /// Local path of the artifact file `name`, if the manifest lists it.
    pub fn file_path(&self, name: &str) -> Option<PathBuf> {
        self.manifest
            .files
            .iter()
            .any(|f| f.name == name)
            .then(|| self.dir.join(name))
    }
}

/// Why an artifact could not be fetched. All but [`FetchError::Io`] are the miner's doing.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No answer (headers or next body chunk) in time, or the deadline passed.
    #[error(
        "{what}: timed out{}",
        .after.map(|d| format!(" after {d:?}")).unwrap_or_default()
    )]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The limit that passed (`None` when the HTTP client's own timeout fired).
        after: Option<Duration>,
    },
    /// The transfer fell under the minimum throughput ([`Limits::min_bytes_per_sec`]).
    #[error(
        "{what}: too slow: {received} bytes in {elapsed:?}, at least {min_bytes_per_sec} bytes/s \
         expected after the first {grace:?}"
    )]
    TooSlow {
        /// What was being received.
        what: String,
        /// Bytes the whole fetch had received.
        received: u64,
        /// Time since the fetch started.
        elapsed: Duration,
        /// The floor.
        min_bytes_per_sec: u64,
        /// The grace before the floor applies.
        grace: Duration,
    },
    /// The miner answered with a redirect. It is not followed (the validator talks only to the
    /// address a miner publishes on chain), and its target is not recorded.
    #[error(
        "{what}: the miner answered with a redirect (HTTP {status}); redirects are not followed"
    )]
    Redirect {
        /// The request.
        what: String,
        /// The 3xx status code.
        status: u16,
    },
    /// Connecting or talking to the miner failed.
    #[error("{what}: {source}")]
    Unreachable {
        /// The request that failed.
        what: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The miner answered with a non-success status.
    #[error("{what}: the miner answered HTTP {status}")]
    BadStatus {
        /// The request.
        what: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The answer is not what the protocol allows (bad JSON, names, short bodies, ...).
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// A hash does not match: the manifest's own, the commitment, or a file's.
    #[error("hash mismatch: {what}: expected {expected}, got {actual}")]
    HashMismatch {
        /// What was compared.
        what: String,
        /// The hash we trust.
        expected: String,
        /// The hash found.
        actual: String,
    },
    /// A declared or delivered size is over a limit.
    #[error("too large: {what}: {size} bytes, limit {limit}")]
    TooLarge {
        /// What is too large.
        what: String,
        /// Its size (at least; a body is cut off at the limit).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Our own disk failed.
    #[error("cache I/O at {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl FetchError {
    /// Stable code recorded with the miner's evaluation.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Timeout { .. } | Self::TooSlow { .. } => "timeout",
            Self::Redirect { .. } => "redirect",
            Self::Unreachable { .. } => "unreachable",
            Self::BadStatus { .. } => "bad_status",
            Self::Malformed(_) => "malformed",
            Self::HashMismatch { .. } => "hash_mismatch",
            Self::TooLarge { .. } => "too_large",
            Self::Io { .. } => "io",
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The HTTP client the validator talks to miners with: it follows no redirects (a miner's 3xx
/// would otherwise send our signed headers and bodies wherever it points), connects within 5 s
/// and keeps no idle connection longer than 30 s.
pub fn miner_http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
}

/// Fetches the artifact a miner committed to from the miner at `base_url` (signing for
/// `miner_hotkey`), or returns the cached copy. `binding` is the commitment's binding of a manifest
/// hash to `miner_hotkey` ([`ModelCommitment`]): the manifest the miner serves must be the one it
/// names for this hotkey. See the module docs for the other checks.
pub async fn fetch_artifact(
    client: &SignedClient,
    base_url: &reqwest::Url,
    miner_hotkey: &AccountId,
    binding: &str,
    limits: &Limits,
    cache_dir: &Path,
) -> Result<CachedArtifact, FetchError> {
    if !is_sha256_hex(binding) {
        return Err(FetchError::Malformed(format!(
            "committed binding {binding:?} is not 64 lowercase hex characters"
        )));
    }
    let miner = Miner {
        client,
        base_url,
        hotkey: miner_hotkey,
        limits,
        started: tokio::time::Instant::now(),
        received: AtomicU64::new(0),
    };
    let fetch = async {
        // Every epoch, even when cached: a miner is paid for serving its model, not for a copy
        // the validator kept.
        let manifest = tokio::time::timeout(limits.request_timeout, fetch_manifest(&miner))
            .await
            .map_err(|_| FetchError::Timeout {
                what: "GET /v1/model/manifest".into(),
                after: Some(limits.request_timeout),
            })??;
        check_manifest(&manifest, limits)?;
        check_binding(&manifest, miner_hotkey, binding)?;
        let entry = cache_dir.join(&manifest.manifest_sha256);
        if let Some(cached) = read_cache_entry(&entry, &manifest.manifest_sha256).await? {
            tracing::debug!(dir = %entry.display(), "artifact found in the cache; the miner still serves it");
            return Ok(cached);
        }
        download(&miner, manifest, cache_dir, &entry).await
    };
    match tokio::time::timeout(limits.deadline, fetch).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout {
            what: "the whole artifact download".into(),
            after: Some(limits.deadline),
        }),
    }
}

/// The complete cache entry of `manifest_sha256` under `cache_dir`, if there is one, without
/// asking anybody: a `validator worker` sharing the loop's cache finds the artifact the loop
/// fetched and checked (see [`fetch_artifact`]).
pub async fn cached_artifact(
    cache_dir: &Path,
    manifest_sha256: &str,
) -> Result<Option<CachedArtifact>, FetchError> {
    if !is_sha256_hex(manifest_sha256) {
        return Err(FetchError::Malformed(format!(
            "manifest hash {manifest_sha256:?} is not 64 lowercase hex characters"
        )));
    }
    read_cache_entry(&cache_dir.join(manifest_sha256), manifest_sha256).await
}

/// A complete cache entry, or `None`. An entry that fails its checks (edited by hand, disk
/// damage) is removed so it is fetched again.
async fn read_cache_entry(
    entry: &Path,
    expected: &str,
) -> Result<Option<CachedArtifact>, FetchError> {
    let manifest_path = entry.join(MANIFEST_FILE);
    let bytes = match tokio::fs::read(&manifest_path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&manifest_path)(e)),
    };
    let mut complete = false;
    let manifest = serde_json::from_slice::<Manifest>(&bytes).ok();
    if let Some(manifest) = &manifest {
        complete = manifest.is_consistent() && manifest.manifest_sha256 == expected;
        for file in &manifest.files {
            let sized = tokio::fs::symlink_metadata(entry.join(&file.name))
                .await
                .is_ok_and(|m| m.is_file() && m.len() == file.size);
            complete &= sized;
        }
    }
    match manifest {
        Some(manifest) if complete => Ok(Some(CachedArtifact {
            dir: entry.to_path_buf(),
            manifest,
            from_cache: true,
        })),
        _ => {
            tracing::warn!(dir = %entry.display(), "damaged artifact cache entry; fetching it again");
            tokio::fs::remove_dir_all(entry)
                .await
                .map_err(io_error(entry))?;
            Ok(None)
        }
    }
}

/// Who to ask and how.
struct Miner<'a> {
    client: &'a SignedClient,
    base_url: &'a reqwest::Url,
    hotkey: &'a AccountId,
    limits: &'a Limits,
    /// When the fetch started, for the throughput floor.
    started: tokio::time::Instant,
    /// Body bytes the whole fetch has received so far.
    received: AtomicU64,
}

impl Miner<'_> {
    /// Sends a signed GET, waiting at most `request_timeout` for the headers; non-2xx is an error.
    async fn get(&self, path: &str, what: &str) -> Result<reqwest::Response, FetchError> {
        self.get_range(path, what, None).await
    }

    /// [`Miner::get`] asking for the bytes from `range_start` on when given.
    async fn get_range(
        &self,
        path: &str,
        what: &str,
        range_start: Option<u64>,
    ) -> Result<reqwest::Response, FetchError> {
        let url = self
            .base_url
            .join(path)
            .map_err(|e| FetchError::Malformed(format!("miner URL {}: {e}", self.base_url)))?;
        let mut request = self.client.get(url, self.hotkey);
        if let Some(start) = range_start {
            request = request.header(reqwest::header::RANGE, format!("bytes={start}-"));
        }
        let send = request.send();
        let wait = self.wait_limit(self.limits.request_timeout, what)?;
        let response = match tokio::time::timeout(wait, send).await {
            Err(_) => return Err(self.expired(what, self.limits.request_timeout)),
            Ok(Err(source)) => return Err(transport_error(what, source)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect {
                what: what.into(),
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(FetchError::BadStatus {
                what: what.into(),
                status: status.as_u16(),
            });
        }
        Ok(response)
    }

    /// The next body chunk, waiting at most `read_timeout` (less when the throughput floor is
    /// closer); its bytes are counted as downloaded.
    async fn chunk(
        &self,
        response: &mut reqwest::Response,
        what: &str,
    ) -> Result<Option<bytes::Bytes>, FetchError> {
        let wait = self.wait_limit(self.limits.read_timeout, what)?;
        match tokio::time::timeout(wait, response.chunk()).await {
            Err(_) => Err(self.expired(what, self.limits.read_timeout)),
            Ok(Err(source)) => Err(transport_error(what, source)),
            Ok(Ok(chunk)) => {
                if let Some(chunk) = &chunk {
                    crate::metrics::record_download_bytes(chunk.len() as u64);
                    self.received
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
                Ok(chunk)
            }
        }
    }

    /// How long the next wait may take: `limit`, or less where the fetch would fall under the
    /// throughput floor before then (already under it: [`FetchError::TooSlow`]).
    fn wait_limit(&self, limit: Duration, what: &str) -> Result<Duration, FetchError> {
        let Some(floor) = self.floor_left() else {
            return Ok(limit);
        };
        if floor.is_zero() {
            return Err(self.too_slow(what));
        }
        Ok(limit.min(floor))
    }

    /// Time until the bytes received so far (plus one) fall under the floor; `None` without one.
    fn floor_left(&self) -> Option<Duration> {
        let rate = self.limits.min_bytes_per_sec;
        if rate == 0 {
            return None;
        }
        let received = self.received.load(Ordering::Relaxed);
        let earned = Duration::from_secs_f64((received as f64 + 1.0) / rate as f64);
        let allowed = self.limits.throughput_grace.saturating_add(earned);
        Some(allowed.saturating_sub(self.started.elapsed()))
    }

    /// The error for a wait that ran out: the floor's when that was the nearer limit.
    fn expired(&self, what: &str, limit: Duration) -> FetchError {
        match self.floor_left() {
            Some(left) if left.is_zero() => self.too_slow(what),
            _ => FetchError::Timeout {
                what: what.into(),
                after: Some(limit),
            },
        }
    }

    fn too_slow(&self, what: &str) -> FetchError {
        FetchError::TooSlow {
            what: what.into(),
            received: self.received.load(Ordering::Relaxed),
            elapsed: self.started.elapsed(),
            min_bytes_per_sec: self.limits.min_bytes_per_sec,
            grace: self.limits.throughput_grace,
        }
    }
}

fn transport_error(what: &str, source: reqwest::Error) -> FetchError {
    if source.is_timeout() {
        FetchError::Timeout {
            what: what.into(),
            after: None,
        }
    } else {
        FetchError::Unreachable {
            what: what.into(),
            source,
        }
    }
}

/// Files, checks, rename: everything after a cache miss of a checked manifest.
async fn download(
    miner: &Miner<'_>,
    manifest: Manifest,
    cache_dir: &Path,
    entry: &Path,
) -> Result<CachedArtifact, FetchError> {
    tokio::fs::create_dir_all(cache_dir)
        .await
        .map_err(io_error(cache_dir))?;
    // Removed on drop: an error or a cancelled future leaves no partial entry.
    let staging = tempfile::Builder::new()
        .prefix(".partial-")
        .tempdir_in(cache_dir)
        .map_err(io_error(cache_dir))?;
    for file in &manifest.files {
        download_file(miner, file, &staging.path().join(&file.name)).await?;
    }
    let manifest_path = staging.path().join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| io_error(&manifest_path)(std::io::Error::other(e)))?;
    tokio::fs::write(&manifest_path, json)
        .await
        .map_err(io_error(&manifest_path))?;

    let staged = staging.keep();
    if let Err(e) = tokio::fs::rename(&staged, entry).await {
        // Another fetch of the same hash may have finished first: its entry is as good as ours.
        let _ = tokio::fs::remove_dir_all(&staged).await;
        return match read_cache_entry(entry, &manifest.manifest_sha256).await? {
            Some(cached) => Ok(cached),
            None => Err(io_error(entry)(e)),
        };
    }
    tracing::info!(
        dir = %entry.display(),
        files = manifest.files.len(),
        bytes = manifest.files.iter().map(|f| f.size).sum::<u64>(),
        "artifact downloaded and verified"
    );
    Ok(CachedArtifact {
        dir: entry.to_path_buf(),
        manifest,
        from_cache: false,
    })
}

async fn fetch_manifest(miner: &Miner<'_>) -> Result<Manifest, FetchError> {
    const WHAT: &str = "GET /v1/model/manifest";
    let limit = miner.limits.max_manifest_bytes;
    let mut response = miner.get("/v1/model/manifest", WHAT).await?;
    let mut body = Vec::new();
    while let Some(chunk) = miner.chunk(&mut response, WHAT).await? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge {
                what: "the manifest".into(),
                size: (body.len() + chunk.len()) as u64,
                limit: limit as u64,
            });
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|e| FetchError::Malformed(format!("the manifest is not valid JSON: {e}")))
}

/// The manifest is the one the commitment binds to this hotkey.
fn check_binding(manifest: &Manifest, hotkey: &AccountId, binding: &str) -> Result<(), FetchError> {
    let actual = ModelCommitment::binding_of(hotkey, &manifest.manifest_sha256)
        .map_err(|e| FetchError::Malformed(format!("the manifest hash: {e}")))?;
    if actual != binding {
        return Err(FetchError::HashMismatch {
            what: "the manifest's binding to this hotkey against the on-chain commitment".into(),
            expected: binding.into(),
            actual,
        });
    }
    Ok(())
}

/// Every check that needs only the manifest: its hash, names, sizes.
fn check_manifest(manifest: &Manifest, limits: &Limits) -> Result<(), FetchError> {
    let recomputed = subnet_common::protocol::manifest_sha256(&manifest.files);
    if recomputed != manifest.manifest_sha256 {
        return Err(FetchError::HashMismatch {
            what: "the manifest's own hash over its files".into(),
            expected: recomputed,
            actual: manifest.manifest_sha256.clone(),
        });
    }
    let mut names = BTreeSet::new();
    for file in &manifest.files {
        let known = REQUIRED_FILES.contains(&file.name.as_str())
            || OPTIONAL_FILES.contains(&file.name.as_str());
        if !known {
            return Err(FetchError::Malformed(format!(
                "file {:?} is not an artifact file",
                truncate(&file.name)
            )));
        }
        if !names.insert(file.name.as_str()) {
            return Err(FetchError::Malformed(format!(
                "file {} is listed twice",
                file.name
            )));
        }
        if !is_sha256_hex(&file.sha256) {
            return Err(FetchError::Malformed(format!(
                "file {} has sha256 {:?}, not 64 lowercase hex characters",
                file.name,
                truncate(&file.sha256)
            )));
        }
        if file.size > limits.max_file_bytes {
            return Err(FetchError::TooLarge {
                what: format!("file {}", file.name),
                size: file.size,
                limit: limits.max_file_bytes,
            });
        }
    }
    if let Some(missing) = REQUIRED_FILES.iter().find(|n| !names.contains(**n)) {
        return Err(FetchError::Malformed(format!(
            "the artifact has no {missing}"
        )));
    }
    let total = manifest
        .files
        .iter()
        .try_fold(0u64, |sum, f| sum.checked_add(f.size))
        .unwrap_or(u64::MAX);
    if total > limits.max_total_bytes {
        return Err(FetchError::TooLarge {
            what: "the artifact".into(),
            size: total,
            limit: limits.max_total_bytes,
        });
    }
    Ok(())
}

/// At most 64 characters of miner-supplied text, for error messages.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Streams one file to `dest` while hashing it; checks its size and sha256.
///
/// When the connection breaks or stalls mid-body after some bytes arrived, the rest is asked for
/// with `Range: bytes=<received>-` (at most [`Limits::max_resumes`] times, each after progress).
/// A miner answering a range request with the whole file (200) is followed from the start.
async fn download_file(
    miner: &Miner<'_>,
    file: &ManifestFile,
    dest: &Path,
) -> Result<(), FetchError> {
    let mut partial = Partial {
        file,
        dest,
        out: tokio::fs::File::create(dest)
            .await
            .map_err(io_error(dest))?,
        hasher: Sha256::new(),
        received: 0,
    };
    let mut resumes = 0;
    loop {
        let before = partial.received;
        match partial.continue_from(miner).await {
            Ok(()) => break,
            Err(e)
                if is_interruption(&e)
                    && partial.received > before
                    && resumes < miner.limits.max_resumes =>
            {
                resumes += 1;
                tracing::info!(
                    file = %file.name,
                    received = partial.received,
                    size = file.size,
                    error = %e,
                    "download interrupted; resuming with a range request"
                );
            }
            Err(e) => return Err(e),
        }
    }
    partial.finish().await
}

/// A transport failure or stall, as opposed to the miner sending wrong data.
fn is_interruption(error: &FetchError) -> bool {
    matches!(
        error,
        FetchError::Unreachable { .. } | FetchError::Timeout { .. }
    )
}

/// One file being downloaded: what is on disk so far and its running hash.
struct Partial<'a> {
    file: &'a ManifestFile,
    dest: &'a Path,
    out: tokio::fs::File,
    hasher: Sha256,
    /// Bytes written to `out` and hashed.
    received: u64,
}

impl Partial<'_> {
    /// Requests the bytes from `received` on and streams them in.
    async fn continue_from(&mut self, miner: &Miner<'_>) -> Result<(), FetchError> {
        let file = self.file;
        let what = format!("GET /v1/model/files/{}", file.name);
        let range = (self.received > 0).then_some(self.received);
        // `file.name` is one of the known artifact names: no escaping needed.
        let mut response = miner
            .get_range(&format!("/v1/model/files/{}", file.name), &what, range)
            .await?;
        match (range, response.status()) {
            (_, reqwest::StatusCode::OK) => self.restart().await?,
            (Some(start), reqwest::StatusCode::PARTIAL_CONTENT) => {
                let want = format!("bytes {start}-{}/{}", file.size - 1, file.size);
                let got = response
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok());
                if got != Some(want.as_str()) {
                    return Err(FetchError::Malformed(format!(
                        "{what}: Content-Range {got:?}, asked for {want:?}"
                    )));
                }
            }
            (_, status) => {
                return Err(FetchError::Malformed(format!(
                    "{what}: unexpected status {status}"
                )));
            }
        }
        let remaining = file.size - self.received;
        if let Some(length) = response.content_length() {
            if length > remaining {
                return Err(self.too_large(self.received.saturating_add(length)));
            }
            if length < remaining {
                return Err(FetchError::Malformed(format!(
                    "{what}: Content-Length {length}, {remaining} bytes expected"
                )));
            }
        }
        while let Some(chunk) = miner.chunk(&mut response, &what).await? {
            let received = self.received + chunk.len() as u64;
            if received > file.size {
                return Err(self.too_large(received));
            }
            self.hasher.update(&chunk);
            self.out
                .write_all(&chunk)
                .await
                .map_err(io_error(self.dest))?;
            self.received = received;
        }
        if self.received < file.size {
            return Err(FetchError::Malformed(format!(
                "{what}: the body ended after {} bytes, the manifest declares {}",
                self.received, file.size
            )));
        }
        Ok(())
    }

    /// Forgets what was received (the miner is sending the whole file again).
    async fn restart(&mut self) -> Result<(), FetchError> {
        if self.received > 0 {
            use tokio::io::AsyncSeekExt;
            self.out.set_len(0).await.map_err(io_error(self.dest))?;
            self.out
                .seek(std::io::SeekFrom::Start(0))
                .await
                .map_err(io_error(self.dest))?;
            self.hasher = Sha256::new();
            self.received = 0;
        }
        Ok(())
    }

    fn too_large(&self, size: u64) -> FetchError {
        FetchError::TooLarge {
            what: format!(
                "file {} (more bytes than the manifest declares)",
                self.file.name
            ),
            size,
            limit: self.file.size,
        }
    }

    /// Checks the hash of the complete file and makes it durable.
    async fn finish(mut self) -> Result<(), FetchError> {
        let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
        if actual != self.file.sha256 {
            return Err(FetchError::HashMismatch {
                what: format!("file {}", self.file.name),
                expected: self.file.sha256.clone(),
                actual,
            });
        }
        self.out.flush().await.map_err(io_error(self.dest))?;
        self.out.sync_all().await.map_err(io_error(self.dest))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64) -> ManifestFile {
        ManifestFile {
            name: name.into(),
            size,
            sha256: "ab".repeat(32),
        }
    }

    fn manifest(files: Vec<ManifestFile>) -> Manifest {
        Manifest::new("tiny-v1", files)
    }

    fn base() -> Vec<ManifestFile> {
        vec![file("config.json", 10), file("model.safetensors", 100)]
    }

    #[test]
    fn a_sound_manifest_passes() {
        let m = manifest(base());
        check_manifest(&m, &Limits::default()).unwrap();
    }

    #[test]
    fn a_manifest_whose_hash_does_not_recompute_is_a_mismatch() {
        let mut m = manifest(base());
        m.files[0].size = 11;
        let err = check_manifest(&m, &Limits::default()).unwrap_err();
        assert_eq!(err.outcome(), "hash_mismatch", "{err}");
    }

    #[test]
    fn a_manifest_other_than_the_commitment_binds_is_a_mismatch() {
        let m = manifest(base());
        let (miner, front_runner) = (AccountId([1; 32]), AccountId([2; 32]));
        let bound = ModelCommitment::binding_of(&miner, &m.manifest_sha256).unwrap();
        check_binding(&m, &miner, &bound).unwrap();
        let other = ModelCommitment::binding_of(&miner, &"0".repeat(64)).unwrap();
        let err = check_binding(&m, &miner, &other).unwrap_err();
        assert_eq!(err.outcome(), "hash_mismatch");
        assert!(err.to_string().contains("commitment"), "{err}");
        // The miner's commitment bytes copied onto another hotkey bind nothing it can serve.
        let err = check_binding(&m, &front_runner, &bound).unwrap_err();
        assert_eq!(err.outcome(), "hash_mismatch", "{err}");
    }

    #[test]
    fn unknown_duplicate_or_missing_files_are_malformed() {
        for files in [
            vec![
                file("../etc/passwd", 1),
                file("config.json", 1),
                file("model.safetensors", 1),
            ],
            vec![
                file("config.json", 1),
                file("config.json", 1),
                file("model.safetensors", 1),
            ],
            vec![file("config.json", 1)],
        ] {
            let m = manifest(files);
            let err = check_manifest(&m, &Limits::default()).unwrap_err();
            assert_eq!(err.outcome(), "malformed", "{err}");
        }
        let mut files = base();
        files[0].sha256 = "AB".repeat(32);
        let m = manifest(files);
        let err = check_manifest(&m, &Limits::default()).unwrap_err();
        assert_eq!(err.outcome(), "malformed", "{err}");
    }

    #[test]
    fn a_competition_admitting_large_artifacts_admits_one_large_file() {
        // SmolLM2's competition: 576 MiB in all; its f32 weights are one 538 MB file.
        let limits = Limits::default().for_artifacts_of(603_979_776);
        let mut files = base();
        files[1].size = 538_090_408;
        assert!(check_manifest(&manifest(files.clone()), &limits).is_ok());
        files[1].size = 603_979_777;
        let err = check_manifest(&manifest(files), &limits).unwrap_err();
        assert_eq!(err.outcome(), "too_large", "{err}");
    }

    #[test]
    fn sizes_over_the_limits_are_too_large_even_when_they_overflow() {
        let limits = Limits {
            max_file_bytes: 100,
            max_total_bytes: 105,
            ..Limits::default()
        };
        let mut files = base();
        files[1].size = 101;
        let m = manifest(files);
        let err = check_manifest(&m, &limits).unwrap_err();
        assert!(
            matches!(
                err,
                FetchError::TooLarge {
                    size: 101,
                    limit: 100,
                    ..
                }
            ),
            "{err}"
        );

        let m = manifest(base());
        let err = check_manifest(&m, &limits).unwrap_err();
        assert!(
            matches!(
                err,
                FetchError::TooLarge {
                    size: 110,
                    limit: 105,
                    ..
                }
            ),
            "{err}"
        );

        let limits = Limits {
            max_file_bytes: u64::MAX,
            max_total_bytes: u64::MAX - 1,
            ..Limits::default()
        };
        let m = manifest(vec![
            file("config.json", u64::MAX),
            file("model.safetensors", 2),
        ]);
        let err = check_manifest(&m, &limits).unwrap_err();
        assert_eq!(err.outcome(), "too_large", "{err}");
    }

    #[test]
    fn timeouts_say_which_limit_passed() {
        let with = FetchError::Timeout {
            what: "GET /x".into(),
            after: Some(Duration::from_millis(1500)),
        };
        assert_eq!(with.to_string(), "GET /x: timed out after 1.5s");
        let without = FetchError::Timeout {
            what: "GET /x".into(),
            after: None,
        };
        assert_eq!(without.to_string(), "GET /x: timed out");
    }

    #[test]
    fn outcome_codes_are_distinct_snake_case() {
        let io = || std::io::Error::other("disk");
        let errors = [
            FetchError::Timeout {
                what: String::new(),
                after: None,
            },
            FetchError::BadStatus {
                what: String::new(),
                status: 500,
            },
            FetchError::Malformed(String::new()),
            FetchError::HashMismatch {
                what: String::new(),
                expected: String::new(),
                actual: String::new(),
            },
            FetchError::TooLarge {
                what: String::new(),
                size: 2,
                limit: 1,
            },
            FetchError::Io {
                path: PathBuf::new(),
                source: io(),
            },
        ];
        let codes: BTreeSet<&str> = errors.iter().map(FetchError::outcome).collect();
        assert_eq!(codes.len(), errors.len());
        assert!(
            codes
                .iter()
                .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
    }

    #[tokio::test]
    async fn a_commitment_that_is_not_hex_never_touches_the_disk() {
        let cache = tempfile::tempdir().unwrap();
        let client = SignedClient::new(
            reqwest::Client::new(),
            subnet_common::keys::Keypair::from_uri("//Alice").unwrap(),
        );
        let url = reqwest::Url::parse("http://127.0.0.1:9").unwrap();
        let hotkey = subnet_common::keys::Keypair::from_uri("//Bob")
            .unwrap()
            .account_id();
        let err = fetch_artifact(
            &client,
            &url,
            &hotkey,
            "../x",
            &Limits::default(),
            cache.path(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.outcome(), "malformed");
    }

    #[tokio::test]
    async fn a_damaged_cache_entry_is_removed() {
        let cache = tempfile::tempdir().unwrap();
        let m = manifest(base());
        let entry = cache.path().join(&m.manifest_sha256);
        std::fs::create_dir(&entry).unwrap();
        std::fs::write(entry.join(MANIFEST_FILE), serde_json::to_vec(&m).unwrap()).unwrap();
        std::fs::write(entry.join("config.json"), [0u8; 10]).unwrap();
        // model.safetensors is missing.
        assert_eq!(
            read_cache_entry(&entry, &m.manifest_sha256).await.unwrap(),
            None
        );
        assert!(!entry.exists());
    }
}
