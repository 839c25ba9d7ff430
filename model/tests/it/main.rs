//! Integration tests of subnet-model: one binary, one module per area.

mod hf_interop;
mod load_memory;
mod smollm2;
