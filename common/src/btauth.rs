//! btauth/1: hotkey-signed HTTP requests (`spec/btauth.md`).
