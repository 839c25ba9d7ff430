//! sr25519 keys, Substrate URIs, mnemonics and SS58 addresses.
