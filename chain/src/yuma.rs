//! Yuma Consensus, as `spec/subtensor.md` §1 describes it.
