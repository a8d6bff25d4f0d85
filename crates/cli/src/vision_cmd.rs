//! `facegate` subcommands for the vision crate (owned by that crate's work).

#[derive(clap::Subcommand)]
pub enum Cmd {}

pub fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {}
}

#[derive(clap::Subcommand)]
pub enum Bench {}

pub fn bench(b: Bench) -> anyhow::Result<()> {
    match b {}
}
