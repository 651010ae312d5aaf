//! reports' integration tests, one binary (each extra test binary relinks
//! the whole dependency tree): a module per behaviour, driving the
//! `reports` binary on reports built with `formats`' types and on
//! fixtures written by the real tools.

mod common;
mod compare;
mod conformance;
mod html;
mod inputs;
mod merge;
mod real_runs;
