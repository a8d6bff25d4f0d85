//! `facegate receipt`: check a signed receipt offline, and print the
//! deployment's receipt public key.

use anyhow::{bail, Result};
use facegate_core::receipts::{self, ReceiptSigner};

use crate::store_cmd::Location;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Signed receipts: verify one offline, or print the deployment's public key.
    Receipt {
        #[command(subcommand)]
        cmd: ReceiptCmd,
    },
}

#[derive(clap::Subcommand)]
pub enum ReceiptCmd {
    /// Verify a receipt code offline with the deployment's public key
    /// (printed in the notice and the filing pack). Exits non-zero if the
    /// code was altered or signed by another key.
    Verify {
        /// The code the kiosk showed (FG1-…); spaces and line breaks are ignored.
        code: String,
        /// The deployment's Ed25519 public key, 64 hex characters.
        #[arg(long)]
        public_key: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Print the deployment's receipt public key (derived from the identity key).
    PublicKey {
        #[command(flatten)]
        loc: Location,
    },
}

pub fn run(cmd: Cmd) -> Result<()> {
    let Cmd::Receipt { cmd } = cmd;
    match cmd {
        ReceiptCmd::Verify {
            code,
            public_key,
            json,
        } => {
            let key = receipts::parse_public_key(&public_key)
                .map_err(|e| anyhow::anyhow!("{} / {e}", e.message_zh()))?;
            match receipts::verify(&code, &key) {
                Ok(r) => {
                    if json {
                        println!("{}", serde_json::json!({ "valid": true, "receipt": r }));
                    } else {
                        println!("有效凭证 / valid receipt");
                        println!("receipt id: {}", r.receipt_id);
                        println!("time (UTC): {}", r.at.format("%Y-%m-%d %H:%M:%S"));
                        println!("decision:   {}", r.decision);
                        println!("method:     {}", r.method);
                        println!("scenario:   {}", r.scenario);
                        println!("device:     {}", r.device.as_deref().unwrap_or("-"));
                        if let Some(rule) = &r.refusal_rule {
                            println!("refused by: {rule}");
                        }
                        println!("person:     {}", r.person.as_deref().unwrap_or("-"));
                    }
                    Ok(())
                }
                Err(e) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({ "valid": false, "error_zh": e.message_zh(), "error_en": e.to_string() })
                        );
                    }
                    bail!("凭证无效：{} / invalid receipt: {e}", e.message_zh())
                }
            }
        }
        ReceiptCmd::PublicKey { loc } => {
            let keys = loc.keys(false)?;
            println!(
                "{}",
                ReceiptSigner::from_seed(&keys.receipt_signing_seed()).public_key_hex()
            );
            Ok(())
        }
    }
}
