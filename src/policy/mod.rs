//! The hiring policy as data: parse and validate the TOML files under `schemas/policy/` into a
//! [`Policy`]. (Loader, checks, signing and diagrams are being written.)

mod types;

pub use types::*;
