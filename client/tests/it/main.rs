//! The client's integration tests, one module per behaviour, in one test
//! binary (each extra binary relinks the whole dependency tree). Every
//! module talks to a bare socketioxide server on 127.0.0.1:0 ([`common`])
//! or to a scripted fake server, on purpose not to the reference server:
//! the client sits below it and is tested against the Socket.IO library
//! alone.

mod common;

mod ack;
mod connect;
mod disconnect;
mod events;
mod namespaces;
mod net;
mod ping;
mod polling;
mod probe;
mod raw;
mod server_errors;
mod upgrade;
