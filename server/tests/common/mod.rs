//! The server's integration tests share the fixtures of
//! [`server::testing`]; this module adds the path of the binary under test.

#![allow(dead_code, unused_imports)]

pub use server::testing::*;

/// The `server` binary Cargo built for these tests.
pub fn server_bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_server"))
}
