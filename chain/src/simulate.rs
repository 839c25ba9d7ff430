//! `devchain simulate FILE.json`.
