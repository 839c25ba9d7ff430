//! The model artifact a miner serves: an HF-style directory (`config.json`, `model.safetensors`,
//! optionally `tokenizer.json`, `tokenizer_config.json`, `generation_config.json`), hashed once
//! at start into a [`Manifest`].
//!
//! The directory is read strictly: only the known artifact files, as regular files at the top
//! level; a symlink, a subdirectory, a name outside `[A-Za-z0-9._-]` or any other file stops the
//! miner with a message naming it (a stray `.env` is never served by accident). Each file's size,
//! modification time and (on Unix) inode are remembered, and [`Artifact::open`] refuses a file
//! that changed since, so the bytes served always match the manifest the miner committed.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::SystemTime,
};

use subnet_common::keys::AccountId;
use subnet_common::protocol::{
    Manifest, ManifestFile, ModelCommitment, REQUIRED_FILES, artifact_files, hash_file,
};

/// Competition id used when `--competition` is not given (`competitions/default.toml`).
pub const DEFAULT_COMPETITION: &str = "byte-llama-v1";

/// Why an artifact directory cannot be served, or a file of it no longer can.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Reading the directory or a file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A directory entry is a symlink; artifacts must hold the bytes themselves.
    #[error("{path} is a symlink; copy the file into the model directory instead")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A directory entry is not a regular file (a subdirectory, a socket, ...).
    #[error("{path} is not a regular file; a model directory holds only files")]
    NotAFile {
        /// The entry.
        path: PathBuf,
    },
    /// A file name with characters outside `[A-Za-z0-9._-]` (or not UTF-8).
    #[error("file name {name:?} has characters outside [A-Za-z0-9._-]")]
    BadName {
        /// The name, lossily decoded.
        name: String,
    },
    /// A file that is not part of an artifact.
    #[error(
        "unexpected file {name:?} in the model directory; an artifact holds only {}",
        known_files().join(", ")
    )]
    UnexpectedFile {
        /// The file name.
        name: String,
    },
    /// A required file is missing.
    #[error("the model directory has no {name}")]
    MissingFile {
        /// The missing file's name.
        name: &'static str,
    },
    /// The competition id cannot be committed on chain.
    #[error("competition id {0:?} is invalid: use 1 to 48 characters of [A-Za-z0-9._-]")]
    BadCompetition(String),
    /// A file changed on disk after the manifest was built.
    #[error("artifact file {name} changed on disk since start-up; restart the miner")]
    Changed {
        /// The file name.
        name: String,
    },
}

/// What identifies a file's contents on disk without re-hashing it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    /// Size in bytes.
    size: u64,
    /// Last modification time.
    modified: SystemTime,
    /// `(device, inode)`: a file replaced by rename gets a new inode even with the same mtime.
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Stamp {
    fn of(metadata: &std::fs::Metadata) -> std::io::Result<Self> {
        Ok(Self {
            size: metadata.len(),
            modified: metadata.modified()?,
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (metadata.dev(), metadata.ino())
            },
        })
    }
}

/// A served file: its manifest entry, where it lives and how it looked when hashed.
#[derive(Debug, Clone)]
struct Entry {
    file: ManifestFile,
    path: PathBuf,
    stamp: Stamp,
}

/// A model directory, hashed into its [`Manifest`].
#[derive(Debug)]
pub struct Artifact {
    /// The manifest served at `/v1/model/manifest`.
    manifest: Manifest,
    /// The files by name (the only names served).
    entries: BTreeMap<String, Entry>,
}

/// An opened artifact file, checked against the manifest.
#[derive(Debug)]
pub struct OpenFile {
    /// The open handle, positioned at the start.
    pub file: tokio::fs::File,
    /// The file's manifest entry (size, sha256).
    pub entry: ManifestFile,
}

/// Every file name an artifact may hold.
pub fn known_files() -> Vec<&'static str> {
    artifact_files().collect()
}

/// True when `name` is a non-empty `[A-Za-z0-9._-]` name other than `.` and `..`.
pub fn is_valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Artifact {
    /// Scans `dir` and hashes each file (streamed, on a blocking thread) into a manifest for
    /// `competition`.
    pub async fn load(dir: &Path, competition: &str) -> Result<Self, ArtifactError> {
        let dir = dir.to_path_buf();
        let competition = competition.to_string();
        match tokio::task::spawn_blocking(move || Self::load_blocking(&dir, &competition)).await {
            Ok(result) => result,
            Err(join) => Err(ArtifactError::Io {
                path: PathBuf::new(),
                source: std::io::Error::other(join),
            }),
        }
    }

    fn load_blocking(dir: &Path, competition: &str) -> Result<Self, ArtifactError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ArtifactError::Io { path, source }
        };
        let known = known_files();
        let mut entries = BTreeMap::new();
        for dir_entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let dir_entry = dir_entry.map_err(io_err(dir))?;
            let path = dir_entry.path();
            let name = dir_entry.file_name().to_string_lossy().into_owned();
            if !dir_entry
                .file_name()
                .to_str()
                .is_some_and(is_valid_file_name)
            {
                return Err(ArtifactError::BadName { name });
            }
            // `symlink_metadata` does not follow links, so a link is seen as one.
            let metadata = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
            if metadata.file_type().is_symlink() {
                return Err(ArtifactError::Symlink { path });
            }
            if !metadata.is_file() {
                return Err(ArtifactError::NotAFile { path });
            }
            if !known.contains(&name.as_str()) {
                return Err(ArtifactError::UnexpectedFile { name });
            }
            let (size, sha256) = hash_file(&path).map_err(io_err(&path))?;
            let reread = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
            let stamp = Stamp::of(&reread).map_err(io_err(&path))?;
            if stamp != Stamp::of(&metadata).map_err(io_err(&path))? || stamp.size != size {
                return Err(ArtifactError::Changed { name });
            }
            let file = ManifestFile {
                name: name.clone(),
                size,
                sha256,
            };
            tracing::info!(file = %name, size, sha256 = %file.sha256, "hashed artifact file");
            entries.insert(name, Entry { file, path, stamp });
        }
        if let Some(missing) = REQUIRED_FILES.iter().find(|n| !entries.contains_key(**n)) {
            return Err(ArtifactError::MissingFile { name: missing });
        }
        let files = entries.values().map(|e| e.file.clone()).collect();
        let manifest = Manifest::new(competition, files);
        ModelCommitment::bind(competition, &AccountId([0; 32]), &manifest.manifest_sha256)
            .map_err(|_| ArtifactError::BadCompetition(competition.to_string()))?;
        Ok(Self { manifest, entries })
    }

    /// The manifest built at start.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The commitment `hotkey` puts on chain for this artifact (bound to that hotkey).
    pub fn commitment(&self, hotkey: &AccountId) -> ModelCommitment {
        ModelCommitment::bind(
            &self.manifest.competition,
            hotkey,
            &self.manifest.manifest_sha256,
        )
        .expect("validated by Artifact::load")
    }

    /// Opens the file `name` for serving. `Ok(None)` when the manifest lists no such file (no
    /// path is ever built from `name` otherwise); [`ArtifactError::Changed`] when the file on disk
    /// is no longer the one hashed at start.
    pub async fn open(&self, name: &str) -> Result<Option<OpenFile>, ArtifactError> {
        let Some(entry) = self.entries.get(name) else {
            return Ok(None);
        };
        let io_err = |source| ArtifactError::Io {
            path: entry.path.clone(),
            source,
        };
        let changed = || ArtifactError::Changed {
            name: name.to_string(),
        };
        // A symlink put in the file's place is refused before opening.
        let link = tokio::fs::symlink_metadata(&entry.path)
            .await
            .map_err(io_err)?;
        if !link.is_file() {
            return Err(changed());
        }
        let file = tokio::fs::File::open(&entry.path).await.map_err(io_err)?;
        // The open handle's metadata: what we stream is what we checked.
        let metadata = file.metadata().await.map_err(io_err)?;
        if Stamp::of(&metadata).map_err(io_err)? != entry.stamp {
            return Err(changed());
        }
        Ok(Some(OpenFile {
            file,
            entry: entry.file.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn model_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "config.json", b"{\"hidden_size\": 8}");
        write(dir.path(), "model.safetensors", &[7u8; 3000]);
        dir
    }

    #[tokio::test]
    async fn manifest_lists_files_sorted_with_their_hashes() {
        let dir = model_dir();
        write(dir.path(), "tokenizer.json", b"{}");
        let artifact = Artifact::load(dir.path(), "tiny-v1").await.unwrap();
        let m = artifact.manifest();
        assert_eq!(m.competition, "tiny-v1");
        let names: Vec<_> = m.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["config.json", "model.safetensors", "tokenizer.json"]
        );
        assert_eq!(m.files[1].size, 3000);
        assert_eq!(m.files[1].sha256, hex::encode(Sha256::digest([7u8; 3000])));
        assert!(m.is_consistent());
        // What a validator computes for a base model on its disk is what a miner would commit.
        assert_eq!(
            m,
            &subnet_common::protocol::manifest_of_dir("tiny-v1", dir.path()).unwrap()
        );
        let hotkey = subnet_common::keys::AccountId([3; 32]);
        assert!(
            artifact
                .commitment(&hotkey)
                .binds(&hotkey, &m.manifest_sha256)
        );
    }

    #[tokio::test]
    async fn refuses_a_missing_required_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "config.json", b"{}");
        let err = Artifact::load(dir.path(), "tiny-v1").await.unwrap_err();
        assert!(matches!(
            err,
            ArtifactError::MissingFile {
                name: "model.safetensors"
            }
        ));
    }

    #[tokio::test]
    async fn refuses_stray_files_subdirectories_and_bad_names() {
        let dir = model_dir();
        write(dir.path(), ".env", b"SECRET=1");
        let err = Artifact::load(dir.path(), "tiny-v1").await.unwrap_err();
        assert!(matches!(err, ArtifactError::UnexpectedFile { ref name } if name == ".env"));
        assert!(err.to_string().contains("model.safetensors"), "{err}");

        let dir = model_dir();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let err = Artifact::load(dir.path(), "tiny-v1").await.unwrap_err();
        assert!(matches!(err, ArtifactError::NotAFile { .. }), "{err}");

        let dir = model_dir();
        write(dir.path(), "a b", b"");
        let err = Artifact::load(dir.path(), "tiny-v1").await.unwrap_err();
        assert!(matches!(err, ArtifactError::BadName { .. }), "{err}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn refuses_symlinks() {
        let dir = model_dir();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("tokenizer.json")).unwrap();
        let err = Artifact::load(dir.path(), "tiny-v1").await.unwrap_err();
        assert!(matches!(err, ArtifactError::Symlink { .. }), "{err}");
    }

    #[tokio::test]
    async fn refuses_an_uncommittable_competition_id() {
        let dir = model_dir();
        let err = Artifact::load(dir.path(), "no spaces").await.unwrap_err();
        assert!(matches!(err, ArtifactError::BadCompetition(_)), "{err}");
    }

    #[tokio::test]
    async fn open_serves_only_listed_names_and_refuses_changed_files() {
        let dir = model_dir();
        let artifact = Artifact::load(dir.path(), "tiny-v1").await.unwrap();
        let open = artifact.open("config.json").await.unwrap().unwrap();
        assert_eq!(open.entry.name, "config.json");
        assert!(artifact.open("../config.json").await.unwrap().is_none());
        assert!(artifact.open("tokenizer.json").await.unwrap().is_none());

        // Same name, new bytes, written by rename as editors and trainers do.
        let tmp = dir.path().join("model.tmp");
        std::fs::write(&tmp, [8u8; 3000]).unwrap();
        std::fs::rename(&tmp, dir.path().join("model.safetensors")).unwrap();
        let err = artifact.open("model.safetensors").await.unwrap_err();
        assert!(matches!(err, ArtifactError::Changed { .. }), "{err}");
        assert!(err.to_string().contains("restart the miner"));
    }

    #[test]
    fn file_names_are_a_strict_charset() {
        assert!(is_valid_file_name("model.safetensors"));
        assert!(is_valid_file_name("generation_config.json"));
        for bad in ["", ".", "..", "a/b", "a\\b", "é", "a b", "a\0"] {
            assert!(!is_valid_file_name(bad), "{bad:?}");
        }
    }
}
