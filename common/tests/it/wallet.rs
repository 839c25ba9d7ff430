//! Wallets against the real bittensor 11.3.0 SDK (through the venv's Python) and the shared
//! `vectors/wallet` folder.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use secrecy::SecretString;
use subnet_common::keys::{AccountId, Keypair, Signature};
use subnet_common::wallet::{PasswordSource, Protection, Wallet, password};

use crate::support;

/// Runs a Python snippet that receives `input` as JSON on stdin (bound to `args`) and prints
/// one line, returned trimmed.
fn python(body: &str, input: serde_json::Value) -> String {
    let script =
        format!("import json, sys\nimport bittensor as bt\nargs = json.load(sys.stdin)\n{body}");
    support::run_python(&script, &input.to_string())
        .trim()
        .to_owned()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_shared_miner1_hotkey_loads_with_its_known_address() {
    let wallet = Wallet::new(
        support::shared_dir().join("vectors/wallet"),
        "vec",
        "miner1",
    );
    let pair = wallet.load_hotkey(&PasswordSource::default()).unwrap();
    let expected = "5E5ExHmtNK4oWtmYJyJA2HC2KD3ueHTAq2oEAxZ72jsT9cPM";
    assert_eq!(pair.account_id().to_ss58(), expected);
    assert_eq!(wallet.hotkey_account().unwrap().to_ss58(), expected);
}

#[test]
fn a_hotkey_created_by_the_sdk_loads_here_with_the_same_address() {
    let dir = tempfile::tempdir().unwrap();
    let ss58 = python(
        "w = bt.Wallet(name='w', hotkey='h', path=args['path'])\n\
         w.create_new_hotkey(use_password=False, overwrite=True, suppress=True)\n\
         print(w.hotkey.ss58_address)",
        serde_json::json!({ "path": dir.path() }),
    );
    let wallet = Wallet::new(dir.path(), "w", "h");
    let pair = wallet.load_hotkey(&PasswordSource::default()).unwrap();
    assert_eq!(pair.account_id().to_ss58(), ss58);
    assert!(pair.mnemonic().is_some(), "the SDK stores the mnemonic");
    assert_eq!(wallet.hotkey_account().unwrap().to_ss58(), ss58);
}

#[test]
fn a_hotkey_written_here_loads_in_the_sdk_and_signatures_cross_verify() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = Wallet::new(dir.path(), "w", "h");
    let (pair, _phrase) = wallet.create_hotkey(false).unwrap();
    assert_eq!(mode_of(&wallet.hotkey_path()), 0o600);
    assert_eq!(mode_of(&wallet.hotkeypub_path()), 0o600);
    let ours = pair.sign(b"from rust");
    let out = python(
        "w = bt.Wallet(name='w', hotkey='h', path=args['path'])\n\
         k = w.hotkey\n\
         ok = k.verify(b'from rust', bytes.fromhex(args['sig'][2:]))\n\
         print(k.ss58_address, w.hotkeypub.ss58_address, ok, '0x' + k.sign(b'from python').hex())",
        serde_json::json!({ "path": dir.path(), "sig": ours.to_hex() }),
    );
    let fields: Vec<&str> = out.split(' ').collect();
    let ss58 = pair.account_id().to_ss58();
    assert_eq!(fields[..3], [ss58.as_str(), ss58.as_str(), "True"], "{out}");
    let theirs = Signature::from_hex(fields[3]).unwrap();
    assert!(pair.account_id().verify(b"from python", &theirs));
}

#[test]
fn an_encrypted_coldkey_made_by_the_sdk_decrypts_here() {
    let dir = tempfile::tempdir().unwrap();
    let ss58 = python(
        "w = bt.Wallet(name='w', hotkey='h', path=args['path'])\n\
         w.create_new_coldkey(use_password=True, coldkey_password='sdk-pass', overwrite=True, suppress=True)\n\
         print(w.coldkeypub.ss58_address)",
        serde_json::json!({ "path": dir.path() }),
    );
    let wallet = Wallet::new(dir.path(), "w", "h");
    assert!(subnet_common::wallet::keyfile::is_encrypted(
        &wallet.coldkey_path()
    ));
    assert_eq!(wallet.coldkey_account().unwrap().to_ss58(), ss58);
    let pair = wallet
        .load_coldkey(&PasswordSource::given(SecretString::from("sdk-pass")))
        .unwrap();
    assert_eq!(pair.account_id().to_ss58(), ss58);
    let wrong = wallet
        .load_coldkey(&PasswordSource::given(SecretString::from("nope")))
        .unwrap_err();
    assert!(wrong.is_wrong_password(), "{wrong}");
    assert!(
        wrong.to_string().contains("coldkey"),
        "the error names the file: {wrong}"
    );
}

#[test]
fn a_coldkey_encrypted_here_decrypts_in_the_sdk_with_the_password_from_its_env_variable() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = Wallet::new(dir.path(), "w", "h");
    let password = SecretString::from("rust-pass");
    let (pair, _) = wallet
        .create_coldkey(Protection::Encrypted(&password), false)
        .unwrap();
    assert_eq!(mode_of(&wallet.coldkey_path()), 0o600);
    let env_var = password::env_var_name(&wallet.coldkey_path());
    let out = python(
        "import os\n\
         os.environ[args['env_var']] = args['env_value']\n\
         w = bt.Wallet(name='w', hotkey='h', path=args['path'])\n\
         print(w.coldkey_file.is_encrypted(), w.coldkey_file.env_var_name() == args['env_var'], w.coldkey.ss58_address)",
        serde_json::json!({
            "path": dir.path(),
            "env_var": env_var,
            "env_value": password::env_value(&env_var, &password),
        }),
    );
    assert_eq!(
        out,
        format!("True True {}", pair.account_id().to_ss58()),
        "SDK output"
    );
}

#[test]
fn public_keyfiles_written_here_load_in_the_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = Wallet::new(dir.path(), "w", "h");
    let pair = Keypair::from_uri("//Alice").unwrap();
    wallet.set_hotkey(&pair, Protection::Plain, false).unwrap();
    let out = python(
        "w = bt.Wallet(name='w', hotkey='h', path=args['path'])\n\
         print(w.hotkeypub.ss58_address, w.hotkey.public_key.hex())",
        serde_json::json!({ "path": dir.path() }),
    );
    let id: AccountId = pair.account_id();
    assert_eq!(out, format!("{} {}", id, hex::encode(id.as_bytes())));
}
