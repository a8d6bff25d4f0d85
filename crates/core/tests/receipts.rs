//! Signed receipts: a receipt verifies offline with the deployment's public
//! key, and any altered byte — of the payload or of the signature — fails.

use chrono::{TimeZone, Utc};
use facegate_core::receipts::{
    code_bytes, code_from_bytes, decode, parse_public_key, verify, Receipt, ReceiptError,
    ReceiptSigner,
};
use proptest::prelude::*;
use uuid::Uuid;

fn receipt() -> impl Strategy<Value = Receipt> {
    (
        any::<u128>(),
        0i64..4_000_000_000,
        "[a-z_]{1,12}",
        "[a-z_]{1,8}",
        "[a-z0-9\\-]{1,40}|小区门禁",
        proptest::option::of("[a-z0-9\\-]{1,20}"),
        proptest::option::of("R[0-9]{1,2}"),
        proptest::option::of("[0-9a-f]{16}"),
    )
        .prop_map(
            |(id, at, decision, method, scenario, device, rule, person)| Receipt {
                receipt_id: Uuid::from_u128(id),
                at: Utc.timestamp_opt(at, 0).unwrap(),
                decision,
                method,
                scenario,
                device,
                refusal_rule: rule,
                person,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every byte position, each flipped by a random non-zero mask: the
    /// code no longer verifies (it is refused as malformed, or its
    /// signature fails), and the unaltered code does.
    #[test]
    fn any_altered_byte_fails(r in receipt(), seed in any::<[u8; 32]>(), mask in 1u8..=255) {
        let signer = ReceiptSigner::from_seed(&seed);
        let key = parse_public_key(&signer.public_key_hex()).unwrap();
        let code = signer.sign(&r);
        prop_assert_eq!(verify(&code, &key).unwrap(), r);
        let bytes = code_bytes(&code).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= mask;
            let altered = code_from_bytes(&b);
            prop_assert!(verify(&altered, &key).is_err(), "byte {} altered by {:#x} still verifies", i, mask);
        }
    }

    /// Every character of the text code, replaced by any other character of
    /// its alphabet: the code no longer verifies.
    #[test]
    fn any_altered_character_fails(r in receipt(), seed in any::<[u8; 32]>(), pick in 0usize..31) {
        let signer = ReceiptSigner::from_seed(&seed);
        let key = parse_public_key(&signer.public_key_hex()).unwrap();
        let code = signer.sign(&r);
        const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        for (i, c) in code.char_indices().skip(4) {
            let others: Vec<char> = ALPHABET.chars().filter(|&x| x != c).collect();
            let mut altered = code.clone();
            altered.replace_range(i..i + 1, &others[pick].to_string());
            prop_assert!(verify(&altered, &key).is_err(), "char {} altered still verifies", i);
        }
    }
}

#[test]
fn a_receipt_verifies_offline_with_the_public_key_only() {
    let signer = ReceiptSigner::from_seed(&[42; 32]);
    let r = Receipt {
        receipt_id: Uuid::now_v7(),
        at: Utc.timestamp_opt(1_790_000_000, 0).unwrap(),
        decision: "refused".into(),
        method: "face".into(),
        scenario: "residential-gate".into(),
        device: Some("gate-1".into()),
        refusal_rule: Some("R8".into()),
        person: Some(signer.pseudonym(Uuid::nil())),
    };
    let code = signer.sign(&r);
    // Only the public key's hex travels to the verifier.
    let pk = signer.public_key_hex();
    drop(signer);
    assert_eq!(verify(&code, &parse_public_key(&pk).unwrap()).unwrap(), r);
    // Copied in groups with spaces and line breaks: still the same receipt.
    let spaced: String = code
        .chars()
        .enumerate()
        .flat_map(|(i, c)| (i > 0 && i % 8 == 0).then_some(' ').into_iter().chain([c]))
        .collect();
    assert_eq!(verify(&spaced, &parse_public_key(&pk).unwrap()).unwrap(), r);
    // Truncated, extended, or foreign: refused with a reason.
    assert!(verify(&code[..code.len() - 1], &parse_public_key(&pk).unwrap()).is_err());
    assert_eq!(decode("XX-ABC").unwrap_err(), ReceiptError::Prefix);
    assert_eq!(parse_public_key("zz").unwrap_err(), ReceiptError::PublicKey);
}
