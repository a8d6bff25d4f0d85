//! The `facegate` binary: thin glue over the library crates.
//!
//! Each area owns one module and its subcommands, so the crates can grow
//! independently: `vision_cmd` (detect, compare, bench lfw/speed),
//! `gallery_cmd` (bench search/identify/calibrate), `pad_cmd` (bench pad),
//! `policy_cmd` (init, lint, filing, pia), `store_cmd` (audit, sweep),
//! `server_cmd` (serve, enrol, verify, identify), `hub_cmd` (hub, bench hub),
//! `receipt_cmd` (receipt verify, receipt public-key).

mod gallery_cmd;
mod hub_bench;
mod hub_cmd;
mod pad_cmd;
mod policy_cmd;
mod receipt_cmd;
mod server_cmd;
mod store_cmd;
mod vision_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "facegate",
    version,
    about = "Face recognition that obeys the Face Recognition Measures by construction"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fetch (if missing) and verify the pinned models, runtime and fixtures.
    Setup,
    /// Benchmarks (accuracy, speed, search); they print figures, never assert.
    Bench {
        #[command(subcommand)]
        cmd: BenchCmd,
    },
    #[command(flatten)]
    Vision(vision_cmd::Cmd),
    #[command(flatten)]
    Policy(policy_cmd::Cmd),
    #[command(flatten)]
    Store(store_cmd::Cmd),
    #[command(flatten)]
    Server(server_cmd::Cmd),
    #[command(flatten)]
    Hub(hub_cmd::Cmd),
    #[command(flatten)]
    Receipt(receipt_cmd::Cmd),
}

#[derive(Subcommand)]
enum BenchCmd {
    #[command(flatten)]
    Vision(vision_cmd::Bench),
    #[command(flatten)]
    Gallery(gallery_cmd::Bench),
    #[command(flatten)]
    Pad(pad_cmd::Bench),
    #[command(flatten)]
    Hub(hub_cmd::Bench),
}

/// The engine's settings from the environment, read once, here (the one
/// configuration path of the CLI; every command that loads an engine or a
/// server starts from these): `FACEGATE_ORT_TUNING=plain` runs every model
/// as shipped at every optimisation, `FACEGATE_DENORMALS=keep` loads the
/// models as shipped with IEEE subnormals (both for comparisons).
pub(crate) fn engine_options() -> facegate_vision::EngineOptions {
    facegate_vision::EngineOptions {
        ort_tuning: std::env::var("FACEGATE_ORT_TUNING").as_deref() != Ok("plain"),
        flush_denormals: std::env::var("FACEGATE_DENORMALS").as_deref() != Ok("keep"),
        ..Default::default()
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Setup => {
            let root = facegate_assets::ensure_all()?;
            for (a, p, ok) in facegate_assets::status() {
                let mark = if ok { "ok " } else { "BAD" };
                println!("{mark} {} ({})", p.display(), a.package.spec());
            }
            println!("cache: {}", root.display());
            Ok(())
        }
        Cmd::Bench {
            cmd: BenchCmd::Vision(b),
        } => vision_cmd::bench(b),
        Cmd::Bench {
            cmd: BenchCmd::Gallery(b),
        } => gallery_cmd::bench(b),
        Cmd::Bench {
            cmd: BenchCmd::Pad(b),
        } => pad_cmd::bench(b),
        Cmd::Bench {
            cmd: BenchCmd::Hub(b),
        } => hub_cmd::bench(b),
        Cmd::Vision(c) => vision_cmd::run(c),
        Cmd::Policy(c) => policy_cmd::run(c),
        Cmd::Store(c) => store_cmd::run(c),
        Cmd::Server(c) => server_cmd::run(c),
        Cmd::Hub(c) => hub_cmd::run(c),
        Cmd::Receipt(c) => receipt_cmd::run(c),
    }
}
