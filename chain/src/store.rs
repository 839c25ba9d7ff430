//! The durable block log: one append-only file of length-prefixed, checksummed records.
//!
//! Layout of `blocks.log`:
//!
//! ```text
//! file header   "DEVCHN01" (8 bytes) ‖ genesis hash (32 bytes)
//! record        len: u32 LE ‖ !len: u32 LE ‖ sha256(payload) (32 bytes) ‖ payload = SCALE(Block)
//! ```
//!
//! Records hold blocks 1, 2, 3, … in order (block 0 is rebuilt from the genesis file). Each append
//! is followed by `fsync` before the caller announces the block.
//!
//! On open every record is read back and checked: the length and its complement agree, the
//! checksum matches, the payload decodes to exactly one block with the expected number and its
//! `parent_hash` links to the previous block. A *torn tail* — fewer bytes at the end than a record
//! header, or a record whose declared payload runs past the end of the file, which is what a crash
//! in the middle of an append leaves — is cut off and reported so the caller can log a warning.
//! Anything else is corruption and fails with [`StoreError::Corrupt`] naming the block number.
//! The open log holds an exclusive file lock, so two nodes cannot share a data directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use parity_scale_codec::{Decode, Encode};

use crate::block::{Block, Hash32, sha256};

/// First bytes of every block log.
pub const MAGIC: &[u8; 8] = b"DEVCHN01";
/// Bytes before the first record: magic and genesis hash.
pub const FILE_HEADER_LEN: u64 = 8 + 32;
/// Bytes before each record's payload: length, its complement, checksum.
pub const RECORD_HEADER_LEN: u64 = 4 + 4 + 32;
/// The largest payload a record may hold; larger lengths are corruption.
pub const MAX_RECORD_BYTES: u32 = 64 * 1024 * 1024;
/// File name of the log inside the data directory.
pub const LOG_FILE_NAME: &str = "blocks.log";

/// Why the block log could not be opened, read or appended to.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An operating-system error on the log file.
    #[error("block log {path}: {op}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// What was being done ("create directory", "open", "lock", "read", "append", …).
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another process (a second node) holds the log open.
    #[error("block log {path} is in use by another devchain node")]
    Locked {
        /// The log file.
        path: PathBuf,
    },
    /// The file does not start with [`MAGIC`]: it is not a block log.
    #[error("block log {path}: not a devchain block log (bad magic bytes)")]
    BadMagic {
        /// The log file.
        path: PathBuf,
    },
    /// The log was written by a chain with a different genesis.
    #[error(
        "block log {path} belongs to genesis 0x{found}, but this genesis is 0x{expected}; \
         use another --data directory"
    )]
    GenesisMismatch {
        /// The log file.
        path: PathBuf,
        /// Hex genesis hash of the genesis file in use.
        expected: String,
        /// Hex genesis hash recorded in the log.
        found: String,
    },
    /// A record is damaged; the node must not start on it.
    #[error("block log {path}: block {block} (record at byte {offset}) is corrupt: {reason}")]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Number of the block the damaged record holds (or should hold).
        block: u64,
        /// Byte offset of the record in the file.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// A block too large to store was appended.
    #[error(
        "block {block} encodes to {bytes} bytes, over the {MAX_RECORD_BYTES}-byte record limit"
    )]
    BlockTooLarge {
        /// The block number.
        block: u64,
        /// Its encoded size.
        bytes: usize,
    },
}

/// What was cut from the end of the log on open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Number of the block whose record was incomplete.
    pub block: u64,
    /// Offset the file was truncated to.
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes_cut: u64,
}

/// The log as found on open: its blocks and whether a torn tail was cut.
#[derive(Debug)]
pub struct Opened {
    /// The log, positioned to append the next block.
    pub log: BlockLog,
    /// Blocks 1..=n in order, checksums and hash links verified.
    pub blocks: Vec<Block>,
    /// Set when an incomplete last record was cut.
    pub torn: Option<TornTail>,
}

/// An open block log, ready to append.
#[derive(Debug)]
pub struct BlockLog {
    path: PathBuf,
    file: File,
    /// Current file length (where the next record goes).
    len: u64,
    /// Number the next appended block must have.
    next_number: u64,
    /// Hash of the last block (genesis hash when empty), for the link check on append.
    last_hash: Hash32,
}

impl BlockLog {
    /// Opens (or creates, with `dir`) `dir/blocks.log` for the chain with `genesis_hash`, verifies every
    /// record and cuts a torn tail.
    pub fn open(dir: &Path, genesis_hash: Hash32) -> Result<Opened, StoreError> {
        let path = dir.join(LOG_FILE_NAME);
        let io = |op: &'static str| {
            let path = path.clone();
            move |source| StoreError::Io { path, op, source }
        };
        std::fs::create_dir_all(dir).map_err(io("create directory"))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::Locked { path }),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(StoreError::Io {
                    path,
                    op: "lock",
                    source,
                });
            }
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io("read"))?;

        if (bytes.len() as u64) < FILE_HEADER_LEN {
            // New log, or a crash while writing its header: nothing committed yet.
            if !bytes.is_empty() && !MAGIC.starts_with(&bytes[..bytes.len().min(8)]) {
                return Err(StoreError::BadMagic { path });
            }
            let mut header = Vec::with_capacity(FILE_HEADER_LEN as usize);
            header.extend_from_slice(MAGIC);
            header.extend_from_slice(&genesis_hash);
            file.set_len(0).map_err(io("truncate"))?;
            file.seek(SeekFrom::Start(0)).map_err(io("append"))?;
            file.write_all(&header).map_err(io("append"))?;
            file.sync_all().map_err(io("fsync"))?;
            sync_dir(dir).map_err(io("fsync"))?;
            let log = BlockLog {
                path,
                file,
                len: FILE_HEADER_LEN,
                next_number: 1,
                last_hash: genesis_hash,
            };
            return Ok(Opened {
                log,
                blocks: Vec::new(),
                torn: None,
            });
        }
        if &bytes[..8] != MAGIC {
            return Err(StoreError::BadMagic { path });
        }
        if bytes[8..40] != genesis_hash {
            return Err(StoreError::GenesisMismatch {
                path,
                expected: hex::encode(genesis_hash),
                found: hex::encode(&bytes[8..40]),
            });
        }

        let (blocks, end, torn) = parse_records(&path, &bytes, genesis_hash)?;
        if let Some(torn) = torn {
            file.set_len(end).map_err(io("truncate"))?;
            file.sync_all().map_err(io("fsync"))?;
            debug_assert_eq!(torn.offset, end);
        }
        file.seek(SeekFrom::Start(end)).map_err(io("append"))?;
        let last_hash = blocks.last().map_or(genesis_hash, Block::hash);
        let next_number = blocks.len() as u64 + 1;
        let log = BlockLog {
            path,
            file,
            len: end,
            next_number,
            last_hash,
        };
        Ok(Opened { log, blocks, torn })
    }

    /// Appends `block` and fsyncs. The block must be the next one and link to the last.
    ///
    /// On failure the file is cut back to its previous length (best effort); the caller should stop.
    pub fn append(&mut self, block: &Block) -> Result<(), StoreError> {
        let number = block.header.number;
        if number != self.next_number || block.header.parent_hash != self.last_hash {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                block: number,
                offset: self.len,
                reason: format!(
                    "append out of order: expected block {} on parent 0x{}",
                    self.next_number,
                    hex::encode(self.last_hash)
                ),
            });
        }
        let payload = block.encode();
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|len| *len <= MAX_RECORD_BYTES)
            .ok_or(StoreError::BlockTooLarge {
                block: number,
                bytes: payload.len(),
            })?;
        let mut record = Vec::with_capacity(RECORD_HEADER_LEN as usize + payload.len());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&(!len).to_le_bytes());
        record.extend_from_slice(&sha256(&payload));
        record.extend_from_slice(&payload);

        let written = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // Leave no partial record behind if we can help it.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(StoreError::Io {
                path: self.path.clone(),
                op: "append",
                source,
            });
        }
        self.len += record.len() as u64;
        self.next_number += 1;
        self.last_hash = block.hash();
        Ok(())
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of the last stored block (0 when only genesis exists).
    pub fn last_number(&self) -> u64 {
        self.next_number - 1
    }
}

/// Reads records from `bytes[FILE_HEADER_LEN..]`; returns the blocks, the end of the last good
/// record and the torn tail, if any.
fn parse_records(
    path: &Path,
    bytes: &[u8],
    genesis_hash: Hash32,
) -> Result<(Vec<Block>, u64, Option<TornTail>), StoreError> {
    let file_len = bytes.len() as u64;
    let mut offset = FILE_HEADER_LEN;
    let mut blocks: Vec<Block> = Vec::new();
    let mut parent = genesis_hash;
    while offset < file_len {
        let number = blocks.len() as u64 + 1;
        let corrupt = |reason: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            block: number,
            offset,
            reason,
        };
        let torn = TornTail {
            block: number,
            offset,
            bytes_cut: file_len - offset,
        };
        if file_len - offset < RECORD_HEADER_LEN {
            return Ok((blocks, offset, Some(torn)));
        }
        let at = offset as usize;
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default());
        let check = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap_or_default());
        if check != !len {
            return Err(corrupt(format!(
                "length field {len} does not match its check value"
            )));
        }
        if len > MAX_RECORD_BYTES {
            return Err(corrupt(format!(
                "length {len} is over the {MAX_RECORD_BYTES}-byte limit"
            )));
        }
        let end = offset + RECORD_HEADER_LEN + u64::from(len);
        if end > file_len {
            return Ok((blocks, offset, Some(torn)));
        }
        let payload = &bytes[at + RECORD_HEADER_LEN as usize..end as usize];
        if sha256(payload) != bytes[at + 8..at + 40] {
            return Err(corrupt("checksum mismatch".to_owned()));
        }
        let mut input = payload;
        let block =
            Block::decode(&mut input).map_err(|e| corrupt(format!("does not decode: {e}")))?;
        if !input.is_empty() {
            return Err(corrupt(format!(
                "{} trailing bytes after the block",
                input.len()
            )));
        }
        if block.header.number != number {
            return Err(corrupt(format!(
                "holds block number {}",
                block.header.number
            )));
        }
        if block.header.parent_hash != parent {
            return Err(corrupt(
                "parent hash does not match the previous block".to_owned(),
            ));
        }
        parent = block.hash();
        blocks.push(block);
        offset = end;
    }
    Ok((blocks, offset, None))
}

/// Makes a newly created file's directory entry durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Header, extrinsics_root};

    const GENESIS: Hash32 = [7; 32];

    fn chain(n: u64) -> Vec<Block> {
        let mut parent = GENESIS;
        (1..=n)
            .map(|number| {
                let extrinsics = vec![vec![number as u8; 5]; number as usize % 3];
                let header = Header {
                    number,
                    parent_hash: parent,
                    extrinsics_root: extrinsics_root(&extrinsics),
                    state_root: [number as u8; 32],
                    timestamp: number * 1000,
                };
                let block = Block { header, extrinsics };
                parent = block.hash();
                block
            })
            .collect()
    }

    fn write(dir: &Path, blocks: &[Block]) -> u64 {
        let mut opened = BlockLog::open(dir, GENESIS).unwrap();
        for b in blocks {
            opened.log.append(b).unwrap();
        }
        opened.log.len
    }

    #[test]
    fn reopening_returns_every_appended_block() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(5);
        write(dir.path(), &blocks);
        let opened = BlockLog::open(dir.path(), GENESIS).unwrap();
        assert_eq!(opened.blocks, blocks);
        assert!(opened.torn.is_none());
        assert_eq!(opened.log.last_number(), 5);
    }

    #[test]
    fn appending_after_reopen_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(4);
        write(dir.path(), &blocks[..2]);
        write(dir.path(), &blocks[2..]);
        assert_eq!(BlockLog::open(dir.path(), GENESIS).unwrap().blocks, blocks);
    }

    #[test]
    fn rejects_out_of_order_append() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(3);
        let mut opened = BlockLog::open(dir.path(), GENESIS).unwrap();
        let err = opened.log.append(&blocks[1]).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { block: 2, .. }), "{err}");
    }

    #[test]
    fn cuts_a_torn_last_record_at_every_length() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(3);
        let full = write(dir.path(), &blocks);
        let path = dir.path().join(LOG_FILE_NAME);
        let bytes = std::fs::read(&path).unwrap();
        let third_start = full - (RECORD_HEADER_LEN + blocks[2].encode().len() as u64);
        for cut in third_start + 1..full {
            std::fs::write(&path, &bytes[..cut as usize]).unwrap();
            let opened = BlockLog::open(dir.path(), GENESIS).unwrap();
            assert_eq!(opened.blocks, blocks[..2], "cut at {cut}");
            assert_eq!(
                opened.torn,
                Some(TornTail {
                    block: 3,
                    offset: third_start,
                    bytes_cut: cut - third_start
                })
            );
            assert_eq!(std::fs::metadata(&path).unwrap().len(), third_start);
        }
    }

    #[test]
    fn a_flipped_byte_in_an_earlier_record_names_its_block() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(4);
        write(dir.path(), &blocks);
        let path = dir.path().join(LOG_FILE_NAME);
        let clean = std::fs::read(&path).unwrap();
        let rec1 = RECORD_HEADER_LEN + blocks[0].encode().len() as u64;
        let second = FILE_HEADER_LEN + rec1;
        // Every byte of block 2's record: length, check, checksum and payload.
        let rec2 = RECORD_HEADER_LEN + blocks[1].encode().len() as u64;
        for at in second..second + rec2 {
            let mut bytes = clean.clone();
            bytes[at as usize] ^= 0x10;
            std::fs::write(&path, &bytes).unwrap();
            match BlockLog::open(dir.path(), GENESIS) {
                Err(StoreError::Corrupt {
                    block: 2, offset, ..
                }) => assert_eq!(offset, second),
                other => panic!("flip at {at}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_second_opener_is_refused_while_the_first_holds_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let first = BlockLog::open(dir.path(), GENESIS).unwrap();
        let err = BlockLog::open(dir.path(), GENESIS).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        drop(first);
        assert!(BlockLog::open(dir.path(), GENESIS).is_ok());
    }

    #[test]
    fn rejects_a_log_of_another_genesis() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &chain(1));
        let err = BlockLog::open(dir.path(), [8; 32]).unwrap_err();
        assert!(matches!(err, StoreError::GenesisMismatch { .. }), "{err}");
    }

    #[test]
    fn rejects_a_file_that_is_not_a_log() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(LOG_FILE_NAME),
            b"hello world, this is not a block log at all",
        )
        .unwrap();
        let err = BlockLog::open(dir.path(), GENESIS).unwrap_err();
        assert!(matches!(err, StoreError::BadMagic { .. }), "{err}");
    }

    #[test]
    fn a_block_that_breaks_the_hash_chain_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut blocks = chain(2);
        write(dir.path(), &blocks[..1]);
        // Write a well-formed record whose parent hash is wrong, bypassing append's check.
        blocks[1].header.parent_hash = [0; 32];
        let payload = blocks[1].encode();
        let mut record = (payload.len() as u32).to_le_bytes().to_vec();
        record.extend_from_slice(&(!(payload.len() as u32)).to_le_bytes());
        record.extend_from_slice(&sha256(&payload));
        record.extend_from_slice(&payload);
        let path = dir.path().join(LOG_FILE_NAME);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&record).unwrap();
        let err = BlockLog::open(dir.path(), GENESIS).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { block: 2, .. }), "{err}");
    }
}
