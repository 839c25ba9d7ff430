//! Request and response types of every miner HTTP route (`docs/protocol.md`), and the model
//! manifest with its commitment.
//!
//! Changing a type here changes the wire format: update `docs/protocol.md` and bump
//! [`PROTOCOL_VERSION`] in the same change.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::AccountId;

/// Version of the miner HTTP API, reported by `/health` and `/v1/identity`.
pub const PROTOCOL_VERSION: &str = "1";

/// Body of every 4xx/5xx answer: a stable machine-readable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable snake_case code, e.g. `bad_signature`, `not_found`, `payload_too_large`.
    pub error: String,
    /// What went wrong, for a person. Never echoes secrets or signatures.
    pub message: String,
}

/// `GET /health` (public).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `"ok"` when the process answers.
    pub status: String,
    /// The miner's hotkey, so a caller can bind btauth requests to it.
    pub hotkey: AccountId,
    /// [`PROTOCOL_VERSION`].
    pub protocol: String,
    /// The binary's version (`CARGO_PKG_VERSION`).
    pub version: String,
}

/// `GET /v1/identity` (btauth): who the miner is and who it verified the caller to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The miner's hotkey (the btauth receiver).
    pub hotkey: AccountId,
    /// The verified sender of this request.
    pub caller: AccountId,
    /// The binary's version.
    pub version: String,
    /// [`PROTOCOL_VERSION`].
    pub protocol: String,
}

/// Files a model artifact must have.
pub const REQUIRED_FILES: &[&str] = &["config.json", "model.safetensors"];

/// Files a model artifact may have besides the required ones.
pub const OPTIONAL_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
];

/// Every file name a model artifact may hold: [`REQUIRED_FILES`], then [`OPTIONAL_FILES`].
pub fn artifact_files() -> impl Iterator<Item = &'static str> {
    REQUIRED_FILES.iter().chain(OPTIONAL_FILES).copied()
}

/// Size and lowercase hex sha256 of a file, read in 1 MiB chunks: its [`ManifestFile`] entry.
pub fn hash_file(path: &std::path::Path) -> std::io::Result<(u64, String)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// The manifest of the artifact files in the model directory `dir`, under `competition`
/// (files other than [`artifact_files`] are not read; a missing required file is a `NotFound`
/// error naming it). Hashes every file: seconds for a 500 MB model.
pub fn manifest_of_dir(
    competition: impl Into<String>,
    dir: &std::path::Path,
) -> std::io::Result<Manifest> {
    let mut files = Vec::new();
    for name in artifact_files() {
        match hash_file(&dir.join(name)) {
            Ok((size, sha256)) => files.push(ManifestFile {
                name: name.to_string(),
                size,
                sha256,
            }),
            Err(error)
                if error.kind() == std::io::ErrorKind::NotFound
                    && !REQUIRED_FILES.contains(&name) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(std::io::Error::new(
                    error.kind(),
                    format!("no {name} in the model directory"),
                ));
            }
            Err(error) => return Err(error),
        }
    }
    Ok(Manifest::new(competition, files))
}

/// One file of a model artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// File name inside the artifact directory (no path separators).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex sha256 of the file's bytes.
    pub sha256: String,
}

/// `GET /v1/model/manifest`: what a miner serves, and the hash it committed on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Competition id the artifact is entered in.
    pub competition: String,
    /// The artifact's files.
    pub files: Vec<ManifestFile>,
    /// [`manifest_sha256`] of `files`.
    pub manifest_sha256: String,
}

impl Manifest {
    /// Builds a manifest, sorting files by name and computing the hash.
    pub fn new(competition: impl Into<String>, mut files: Vec<ManifestFile>) -> Self {
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let manifest_sha256 = manifest_sha256(&files);
        Self {
            competition: competition.into(),
            files,
            manifest_sha256,
        }
    }

    /// True when `manifest_sha256` matches the listed files.
    pub fn is_consistent(&self) -> bool {
        manifest_sha256(&self.files) == self.manifest_sha256
    }
}

/// The manifest hash: lowercase hex sha256 over the files' `"{name} {size} {sha256}\n"` lines,
/// sorted by name (byte order). Order of `files` does not matter.
pub fn manifest_sha256(files: &[ManifestFile]) -> String {
    let mut lines: Vec<String> = files
        .iter()
        .map(|f| format!("{} {} {}\n", f.name, f.size, f.sha256))
        .collect();
    lines.sort();
    let mut hasher = Sha256::new();
    for line in &lines {
        hasher.update(line.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// What a miner commits on chain for its model: the competition and a *binding* of its manifest
/// hash to its own hotkey.
///
/// Encoded as the UTF-8 bytes `model2:<competition_id>:<binding>` (at most 128 bytes, the
/// chain's commitment limit), where `binding` is the lowercase hex of
/// `sha256("subnet/model-commitment/v1" ‖ hotkey (32 bytes) ‖ manifest_sha256 (32 bytes))`.
///
/// The manifest hash itself never appears on chain, and only validators may read a miner's
/// manifest: a front-runner that copies a commitment's bytes onto its own hotkey commits a
/// binding no manifest satisfies for that hotkey ([`ModelCommitment::binds`]), and one that knows
/// no manifest cannot bind a leader's model before the leader's commitment. The legacy unbound
/// form `model:<competition_id>:<manifest_sha256>` decodes to [`CommitmentError::Unbound`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCommitment {
    /// Competition id, `[A-Za-z0-9._-]{1,48}`.
    pub competition: String,
    /// Lowercase hex binding of the manifest hash to the committing hotkey.
    pub binding: String,
}

/// Why commitment bytes are not a [`ModelCommitment`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    /// The bytes do not start with `model2:` (or `model:`).
    #[error("not a model commitment (expected `model2:<competition>:<binding>`)")]
    NotModel,
    /// The legacy `model:<competition>:<sha256>` form, which names the manifest without binding
    /// it to the hotkey: anyone could copy it.
    #[error(
        "an unbound `model:` commitment (it names the manifest without binding it to the hotkey); \
         recommit with `miner commit`"
    )]
    Unbound,
    /// The competition id is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error("invalid competition id {0:?}")]
    BadCompetition(String),
    /// A hash is not 64 lowercase hex characters.
    #[error("invalid hash {0:?}: expected 64 lowercase hex characters")]
    BadHash(String),
}

/// True for 64 lowercase hex characters.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ModelCommitment {
    /// Prefix that marks a model commitment.
    pub const PREFIX: &'static str = "model2:";
    /// Prefix of the legacy, unbound form.
    pub const LEGACY_PREFIX: &'static str = "model:";
    /// Domain separator of the binding hash.
    pub const DOMAIN: &'static [u8] = b"subnet/model-commitment/v1";

    /// Validates and builds a commitment from its parts.
    pub fn new(competition: &str, binding: &str) -> Result<Self, CommitmentError> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if competition.is_empty() || competition.len() > 48 || !competition.chars().all(ok_char) {
            return Err(CommitmentError::BadCompetition(competition.to_string()));
        }
        if !is_sha256_hex(binding) {
            return Err(CommitmentError::BadHash(binding.to_string()));
        }
        Ok(Self {
            competition: competition.to_string(),
            binding: binding.to_string(),
        })
    }

    /// The commitment `hotkey` makes for the manifest `manifest_sha256` (64 lowercase hex).
    pub fn bind(
        competition: &str,
        hotkey: &AccountId,
        manifest_sha256: &str,
    ) -> Result<Self, CommitmentError> {
        let binding = Self::binding_of(hotkey, manifest_sha256)?;
        Self::new(competition, &binding)
    }

    /// The binding of `manifest_sha256` (64 lowercase hex) to `hotkey`.
    pub fn binding_of(
        hotkey: &AccountId,
        manifest_sha256: &str,
    ) -> Result<String, CommitmentError> {
        if !is_sha256_hex(manifest_sha256) {
            return Err(CommitmentError::BadHash(manifest_sha256.to_string()));
        }
        let manifest = hex::decode(manifest_sha256)
            .map_err(|_| CommitmentError::BadHash(manifest_sha256.to_string()))?;
        let mut hasher = Sha256::new();
        hasher.update(Self::DOMAIN);
        hasher.update(hotkey.0);
        hasher.update(&manifest);
        Ok(hex::encode(hasher.finalize()))
    }

    /// True when this commitment, made by `hotkey`, names the manifest `manifest_sha256`.
    pub fn binds(&self, hotkey: &AccountId, manifest_sha256: &str) -> bool {
        Self::binding_of(hotkey, manifest_sha256).is_ok_and(|b| b == self.binding)
    }

    /// The on-chain bytes.
    pub fn encode(&self) -> Vec<u8> {
        format!("{}{}:{}", Self::PREFIX, self.competition, self.binding).into_bytes()
    }

    /// Parses on-chain bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, CommitmentError> {
        let text = std::str::from_utf8(bytes).map_err(|_| CommitmentError::NotModel)?;
        let Some(rest) = text.strip_prefix(Self::PREFIX) else {
            return Err(if text.starts_with(Self::LEGACY_PREFIX) {
                CommitmentError::Unbound
            } else {
                CommitmentError::NotModel
            });
        };
        let (competition, binding) = rest.rsplit_once(':').ok_or(CommitmentError::NotModel)?;
        Self::new(competition, binding)
    }
}

/// One message of a conversation sent to `POST /v1/generate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant` (whatever the model's chat template knows).
    pub role: String,
    /// The text.
    pub content: String,
}

/// `POST /v1/generate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// Text prompt, tokenized by the miner's tokenizer. Exactly one of `prompt`, `input_ids` and
    /// `messages`.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Token ids. Exactly one of `prompt`, `input_ids` and `messages`.
    #[serde(default)]
    pub input_ids: Option<Vec<u32>>,
    /// A conversation, rendered with the model's own chat template and its generation prompt
    /// (as chat competitions put their prompts), then tokenized. Exactly one of `prompt`,
    /// `input_ids` and `messages`. Left out of the JSON when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
    /// Tokens to generate at most.
    pub max_new_tokens: u32,
    /// 0 = greedy; otherwise sampling temperature.
    #[serde(default)]
    pub temperature: f32,
    /// Seed for sampling (ignored when greedy).
    #[serde(default)]
    pub seed: u64,
}

/// Answer to [`GenerateRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerateResponse {
    /// Generated token ids (prompt excluded).
    pub output_ids: Vec<u32>,
    /// The generated ids decoded as text (lossy).
    pub text: String,
}

/// One pairwise comparison a validator asks a label miner to judge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlhfTask {
    /// Validator-chosen id, unique within the batch.
    pub task_id: String,
    /// The prompt both answers respond to.
    pub prompt: String,
    /// Answer shown as A.
    pub a: String,
    /// Answer shown as B.
    pub b: String,
}

/// `POST /v1/rlhf/tasks` (validators only): a batch with a deadline block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlhfTaskBatch {
    /// Validator-chosen id of the batch.
    pub batch_id: String,
    /// Labels after this block are not collected.
    pub deadline_block: u64,
    /// The tasks.
    pub tasks: Vec<RlhfTask>,
}

/// **Simulations only**: a batch's hidden truth as a validator started with
/// `--labels.truth-dir` writes it (`DIR/<batch_id>.json`), for simulated labelers
/// (`miner labelers simulate --truth-dir`) to stand in for people who see which answer of a
/// known pair is the corrupted one. It gives the known answers away: never where miners can read
/// it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulationTruth {
    /// The batch.
    pub batch_id: String,
    /// Each task's right choice (`null` for open pairs), by task id.
    pub tasks: std::collections::BTreeMap<String, Option<Choice>>,
    /// Open pairs whose two answers came from differently ranked models: the side of the model
    /// the validator ranked higher, by task id. Simulated people prefer it, as a stand-in for
    /// judging which answer is better (a simulation has no opinion of its own).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub open_better: std::collections::BTreeMap<String, Choice>,
}

/// A labeler's judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    /// Answer A is better.
    A,
    /// Answer B is better.
    B,
    /// Neither is better.
    Tie,
}

/// `POST /v1/rlhf/labels` request: which batch to collect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsRequest {
    /// The batch sent earlier by the same validator.
    pub batch_id: String,
}

/// One label of a collected batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// The task judged.
    pub task_id: String,
    /// The judgement.
    pub choice: Choice,
    /// Labeler name (as the miner's operator registered it).
    pub labeler: String,
    /// Seconds the labeler spent on the task.
    pub seconds: f64,
}

/// `POST /v1/rlhf/labels` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelsResponse {
    /// Labels collected so far for the batch.
    pub labels: Vec<Label>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64, byte: char) -> ManifestFile {
        ManifestFile {
            name: name.into(),
            size,
            sha256: byte.to_string().repeat(64),
        }
    }

    #[test]
    fn manifest_hash_ignores_file_order() {
        let a = vec![
            file("config.json", 10, 'a'),
            file("model.safetensors", 20, 'b'),
        ];
        let b = vec![a[1].clone(), a[0].clone()];
        assert_eq!(manifest_sha256(&a), manifest_sha256(&b));
    }

    #[test]
    fn manifest_hash_is_sha256_of_sorted_lines() {
        let files = vec![file("b", 2, 'b'), file("a", 1, 'a')];
        let text = format!("a 1 {}\nb 2 {}\n", "a".repeat(64), "b".repeat(64));
        let want = hex::encode(Sha256::digest(text.as_bytes()));
        assert_eq!(manifest_sha256(&files), want);
    }

    #[test]
    fn manifest_hash_changes_with_any_field() {
        let base = vec![file("a", 1, 'a')];
        let h = manifest_sha256(&base);
        assert_ne!(h, manifest_sha256(&[file("a", 2, 'a')]));
        assert_ne!(h, manifest_sha256(&[file("c", 1, 'a')]));
        assert_ne!(h, manifest_sha256(&[file("a", 1, 'c')]));
    }

    #[test]
    fn manifest_new_sorts_and_is_consistent() {
        let m = Manifest::new("tiny-v1", vec![file("z", 1, 'a'), file("a", 1, 'b')]);
        assert_eq!(m.files[0].name, "a");
        assert!(m.is_consistent());
        let mut tampered = m.clone();
        tampered.files[0].size = 99;
        assert!(!tampered.is_consistent());
    }

    #[test]
    fn model_commitment_round_trips_within_chain_limit() {
        let c = ModelCommitment::new(&"c".repeat(48), &"f".repeat(64)).expect("valid");
        let bytes = c.encode();
        assert!(bytes.len() <= 128, "{} bytes", bytes.len());
        assert_eq!(ModelCommitment::decode(&bytes), Ok(c));
    }

    #[test]
    fn a_commitment_binds_its_manifest_to_its_hotkey_only() {
        let (alice, mallory) = (AccountId([1; 32]), AccountId([2; 32]));
        let manifest = "ab".repeat(32);
        let c = ModelCommitment::bind("tiny", &alice, &manifest).expect("valid");
        assert!(c.binds(&alice, &manifest));
        assert!(!c.binds(&alice, &"ac".repeat(32)), "another manifest");
        // A front-runner's verbatim copy of Alice's bytes names no manifest for its hotkey.
        let copied = ModelCommitment::decode(&c.encode()).expect("decodes");
        assert!(!copied.binds(&mallory, &manifest));
        assert_ne!(c.binding, manifest, "the manifest hash is not on chain");
        // Pinned: sha256("subnet/model-commitment/v1" ‖ 0x01×32 ‖ 0xab×32).
        let mut pinned = Vec::from(&b"subnet/model-commitment/v1"[..]);
        pinned.extend([1u8; 32]);
        pinned.extend([0xabu8; 32]);
        assert_eq!(c.binding, hex::encode(Sha256::digest(&pinned)));
        assert!(!c.binds(&alice, "not hex"));
    }

    #[test]
    fn model_commitment_rejects_bad_parts() {
        let h = "0".repeat(64);
        assert!(matches!(
            ModelCommitment::new("", &h),
            Err(CommitmentError::BadCompetition(_))
        ));
        assert!(matches!(
            ModelCommitment::new("a b", &h),
            Err(CommitmentError::BadCompetition(_))
        ));
        assert!(matches!(
            ModelCommitment::new("x", "ABC"),
            Err(CommitmentError::BadHash(_))
        ));
        assert!(matches!(
            ModelCommitment::new("x", &"A".repeat(64)),
            Err(CommitmentError::BadHash(_))
        ));
        assert!(matches!(
            ModelCommitment::bind("x", &AccountId([0; 32]), "ABC"),
            Err(CommitmentError::BadHash(_))
        ));
        assert_eq!(
            ModelCommitment::decode(b"hello"),
            Err(CommitmentError::NotModel)
        );
        assert_eq!(
            ModelCommitment::decode(&[0xff, 0xfe]),
            Err(CommitmentError::NotModel)
        );
        assert_eq!(
            ModelCommitment::decode(format!("model:x:{h}").as_bytes()),
            Err(CommitmentError::Unbound)
        );
    }

    #[test]
    fn generate_request_rejects_unknown_fields() {
        let bad = r#"{"prompt":"hi","max_new_tokens":4,"temprature":1.0}"#;
        assert!(serde_json::from_str::<GenerateRequest>(bad).is_err());
        let good = r#"{"prompt":"hi","max_new_tokens":4}"#;
        let req: GenerateRequest = serde_json::from_str(good).expect("valid");
        assert_eq!(req.temperature, 0.0);
    }

    #[test]
    fn choice_serializes_lowercase() {
        assert_eq!(
            serde_json::to_string(&Choice::Tie).expect("json"),
            "\"tie\""
        );
        assert_eq!(
            serde_json::from_str::<Choice>("\"a\"").expect("json"),
            Choice::A
        );
    }
}
