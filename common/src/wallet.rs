//! The bittensor wallet layout and keyfiles.
