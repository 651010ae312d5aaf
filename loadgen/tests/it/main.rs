//! loadgen's integration tests, one binary (each extra test binary relinks
//! the whole dependency tree): a module per behaviour.

mod cli;
mod common;
mod engine;
mod generator;
mod handshake;
mod identity;
mod language;
mod noise;
mod report;
mod scenarios;
