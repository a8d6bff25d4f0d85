//! `facegate` subcommands for the server crate (owned by that crate's work).

#[derive(clap::Subcommand)]
pub enum Cmd {}

pub fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {}
}
