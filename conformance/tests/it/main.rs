//! The conformance runner's integration tests, in one test binary (each
//! extra binary relinks the whole dependency tree):
//!
//! * [`cli`]: the binary's contract (subcommands, exit codes, errors);
//! * [`reference`]: every case passes against the in-process reference
//!   server, and the JSON and JUnit outputs are well-formed;
//! * [`faults`]: a rewriting proxy injects one fault per run and the case
//!   that owns the broken requirement fails;
//! * [`fault_matrix`]: every case id fails under at least one fault (an
//!   altserver `--bug`, or a reference server behind the proxy), and the
//!   README's table says which;
//! * [`cluster`]: every case passes against two nodes on one Redis and
//!   one PostgreSQL database;
//! * [`altserver`]: the whole suite against the second implementation
//!   (its own profile, signed tokens, WebSocket only) at both levels;
//! * [`profile`]: `profile check` against the reference server and
//!   altserver, and the teardown at the end of a run;
//! * [`handshake`]: headers, query, Origin and auth template on the wire,
//!   excluded transports skipped, altserver without long-polling found;
//! * [`identity`]: tokens signed by the runner (altserver, polling off) and
//!   static users with ready-made tokens, their gaps skipped with reasons.
//!
//! Servers come from `server::Embedded` (ephemeral loopback port,
//! temporary database) and `server::testing` (PostgreSQL, Redis).

mod common;

mod altserver;
mod cli;
mod cluster;
mod fault_matrix;
mod faults;
mod handshake;
mod identity;
mod profile;
mod reference;
