//! `facegate bench` subcommands for the gallery crate.

#[derive(clap::Subcommand)]
pub enum Bench {}

pub fn bench(b: Bench) -> anyhow::Result<()> {
    match b {}
}
