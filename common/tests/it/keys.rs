//! Keys against golden vectors: `vectors/keys.json` (bittensor 11.3.0) and the table of
//! `spec/subtensor.md` §4.4 (btwallet's own tests).

use serde::Deserialize;
use subnet_common::keys::{AccountId, KeyError, Keypair};

use crate::support;

#[derive(Deserialize)]
struct Vectors {
    keys: Vec<KeyVector>,
}

#[derive(Deserialize)]
struct KeyVector {
    uri: Option<String>,
    mnemonic: Option<String>,
    seed_hex: Option<String>,
    public_key_hex: String,
    ss58: String,
}

fn load_vectors() -> Vectors {
    let path = support::shared_dir().join("vectors/keys.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("keys.json parses")
}

fn ss58_of(uri: &str) -> String {
    Keypair::from_uri(uri)
        .unwrap_or_else(|e| panic!("{uri}: {e}"))
        .account_id()
        .to_ss58()
}

#[test]
fn every_entry_of_keys_json_is_reproduced() {
    let vectors = load_vectors();
    assert!(vectors.keys.len() >= 6);
    for v in &vectors.keys {
        let pair = match (&v.uri, &v.mnemonic, &v.seed_hex) {
            (Some(uri), None, None) => Keypair::from_uri(uri).unwrap(),
            (None, Some(phrase), None) => Keypair::from_mnemonic(phrase, None).unwrap(),
            (None, None, Some(seed)) => {
                let bytes: [u8; 32] = hex::decode(seed).unwrap().try_into().unwrap();
                let from_seed = Keypair::from_seed(&bytes);
                let from_uri = Keypair::from_uri(&format!("0x{seed}")).unwrap();
                assert_eq!(from_seed.account_id(), from_uri.account_id());
                from_seed
            }
            _ => panic!("vector names exactly one of uri, mnemonic, seed_hex"),
        };
        let id = pair.account_id();
        assert_eq!(hex::encode(id.as_bytes()), v.public_key_hex, "{}", v.ss58);
        assert_eq!(id.to_ss58(), v.ss58);
        assert_eq!(AccountId::from_ss58(&v.ss58).unwrap(), id);
        assert_eq!(v.ss58.parse::<AccountId>().unwrap(), id);
        assert!(id.verify(b"vector", &pair.sign(b"vector")));
    }
}

#[test]
fn a_mnemonic_uri_equals_the_mnemonic_itself() {
    let vectors = load_vectors();
    let phrase = vectors
        .keys
        .iter()
        .find_map(|v| v.mnemonic.clone())
        .expect("a mnemonic vector");
    assert_eq!(
        Keypair::from_uri(&phrase).unwrap().account_id(),
        Keypair::from_mnemonic(&phrase, None).unwrap().account_id()
    );
}

const BTWALLET_PHRASE: &str =
    "old leopard transfer rib spatial phone calm indicate online fire caution review";

#[test]
fn btwallet_mnemonic_vector_matches_in_both_prefixes() {
    let id = Keypair::from_mnemonic(BTWALLET_PHRASE, None)
        .unwrap()
        .account_id();
    assert_eq!(
        hex::encode(id.as_bytes()),
        "e4359ad3e2716c539a1d663ebd0a51bdc5c98a12e663bb4c4402db47828c9446"
    );
    assert_eq!(
        id.to_ss58(),
        "5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX"
    );
    assert_eq!(
        id.to_ss58_with_prefix(0).unwrap(),
        "16ADqpMa4yzfmWs3nuTSMhfZ2ckeGtvqhPWCNqECEGDcGgU2"
    );
}

#[test]
fn btwallet_private_key_vector_gives_the_same_public_key() {
    let private: [u8; 64] = hex::decode(
        "1f1995bdf3a17b60626a26cfe6f564b337d46056b7a1281b64c649d592ccda0a\
         9cffd34d9fb01cae1fba61aeed184c817442a2186d5172416729a4b54dd4b84e",
    )
    .unwrap()
    .try_into()
    .unwrap();
    let pair = Keypair::from_secret_key_bytes(&private).unwrap();
    assert_eq!(
        pair.account_id().to_ss58(),
        "5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX"
    );
    assert_eq!(*pair.to_secret_key_bytes(), private);
    // The mnemonic expands to the very same secret key bytes.
    let from_phrase = Keypair::from_mnemonic(BTWALLET_PHRASE, None).unwrap();
    assert_eq!(*from_phrase.to_secret_key_bytes(), private);
}

#[test]
fn btwallet_derivation_vectors_match() {
    let cases = [
        (
            format!("{BTWALLET_PHRASE}//Alice"),
            "5FEiH8iuDUw271xbqWTWuB6WrDjv5dnCeDX1CyHubAniXDNN",
        ),
        (
            format!("{BTWALLET_PHRASE}/Alice"),
            "5GNXbA46ma5dg19GXdiKi5JH3mnkZ8Yea3bBtZAvj7t99P9i",
        ),
        (
            "//Bob/test".to_owned(),
            "5CJGwWiKXSE16WJaxBdPZhWqUYkotgenLUALv7ZvqQ4TXeqf",
        ),
        (
            "/Bob//test".to_owned(),
            "5Cwc8tShrshDJUp1P1M21dKUTcYQpV9GcfSa4hUBNmMdV3Cx",
        ),
        (
            "//PathNameLongerThan32BytesWhichShouldBeHashed".to_owned(),
            "5GR5pfZeNs1uQiSWVxZaQiZou3wdZiX894eqgvfNfHbEh7W2",
        ),
    ];
    for (uri, ss58) in &cases {
        assert_eq!(&ss58_of(uri), ss58, "{uri}");
    }
}

#[test]
fn a_uri_password_changes_the_key() {
    let plain = ss58_of("//Alice");
    assert_ne!(ss58_of("//Alice///secret"), plain);
    assert_eq!(ss58_of("//Alice///secret"), ss58_of("//Alice///secret"));
}

#[test]
fn soft_derivation_forgets_the_seed_and_hard_keeps_one() {
    assert!(Keypair::from_uri("//Alice").unwrap().seed().is_some());
    assert!(Keypair::from_uri("//Alice/soft").unwrap().seed().is_none());
    let hard = Keypair::from_uri("//Alice").unwrap();
    let seed = *hard.seed().unwrap();
    assert_eq!(Keypair::from_seed(&seed).account_id(), hard.account_id());
}

#[test]
fn invalid_inputs_get_clear_errors() {
    assert!(matches!(
        Keypair::from_uri("0x1234"),
        Err(KeyError::InvalidLength { expected: 32, .. })
    ));
    assert!(matches!(
        Keypair::from_uri("0xzz"),
        Err(KeyError::InvalidHex { .. })
    ));
    assert!(matches!(
        Keypair::from_mnemonic("not a real mnemonic at all", None),
        Err(KeyError::InvalidMnemonic { .. })
    ));
    let err = AccountId::from_ss58("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ").unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}
