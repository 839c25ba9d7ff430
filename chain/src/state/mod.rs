//! The chain state machine (pure: no IO, no clock).
