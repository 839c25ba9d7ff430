//! Command-line pieces the miner and validator binaries embed: the bittensor wallet flags and
//! the `keys` subcommands.
//!
//! ```ignore
//! #[derive(clap::Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     wallet: subnet_common::cli::WalletArgs,
//!     #[command(subcommand)]
//!     command: Command,
//! }
//! #[derive(clap::Subcommand)]
//! enum Command {
//!     /// Manage this node's hotkey.
//!     #[command(subcommand)]
//!     Keys(subnet_common::cli::KeysCommand),
//! }
//! // Command::Keys(cmd) => subnet_common::cli::run(&cmd, &cli.wallet, &mut std::io::stdout())?,
//! ```

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::keys::{AccountId, Keypair};
use crate::wallet::{
    DEFAULT_NAME, DEFAULT_WALLET_PATH, PasswordSource, Protection, Wallet, WalletError,
};

/// `--wallet.path`, `--wallet.name`, `--wallet.hotkey`, as btcli users know them.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct WalletArgs {
    /// Folder holding the wallets (`~` is expanded).
    #[arg(
        long = "wallet.path",
        env = "BT_WALLET_PATH",
        default_value = DEFAULT_WALLET_PATH,
        value_name = "DIR"
    )]
    pub path: PathBuf,
    /// Wallet (coldkey) name: a folder under the wallet path.
    #[arg(
        long = "wallet.name",
        env = "BT_WALLET_NAME",
        default_value = DEFAULT_NAME,
        value_name = "NAME"
    )]
    pub name: String,
    /// Hotkey name: a file under `<wallet>/hotkeys/`.
    #[arg(
        long = "wallet.hotkey",
        env = "BT_WALLET_HOTKEY",
        default_value = DEFAULT_NAME,
        value_name = "NAME"
    )]
    pub hotkey: String,
}

/// The chain a binary talks to, flagged as btcli and the SDK spell it:
/// `--subtensor.network finney|test|local|<URL>` or `--subtensor.chain_endpoint <URL>` (which wins;
/// `--chain.url` is its older name), and `--netuid`; env `BT_SUBTENSOR_NETWORK`,
/// `BT_SUBTENSOR_CHAIN_ENDPOINT`, `BT_NETUID` (a flag wins over its variable). Nothing given means
/// `local`: `ws://127.0.0.1:9944`, where `devchain run` listens. Whether the endpoint is a
/// Subtensor node or the dev chain is asked of the endpoint itself.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args, serde::Serialize)]
pub struct ChainArgs {
    /// Network: `finney`, `test`, `local`, or a `ws://`, `wss://`, `http(s)://` endpoint.
    #[arg(
        long = "subtensor.network",
        env = "BT_SUBTENSOR_NETWORK",
        value_name = "NAME|URL"
    )]
    pub network: Option<String>,
    /// The endpoint's URL; overrides `--subtensor.network` (`--chain.url` is its older name).
    #[arg(
        long = "subtensor.chain_endpoint",
        visible_alias = "chain.url",
        env = "BT_SUBTENSOR_CHAIN_ENDPOINT",
        value_name = "URL"
    )]
    pub chain_endpoint: Option<String>,
    /// Subnet.
    #[arg(long = "netuid", env = "BT_NETUID", default_value_t = 1)]
    pub netuid: u16,
}

impl ChainArgs {
    /// The network when no flag names one.
    pub const DEFAULT_NETWORK: &'static str = "local";

    /// The endpoint or network name the flags give (see the type's documentation).
    pub fn endpoint(&self) -> &str {
        self.chain_endpoint
            .as_deref()
            .or(self.network.as_deref())
            .unwrap_or(Self::DEFAULT_NETWORK)
    }

    /// The flag the endpoint came from, for error messages.
    pub fn flag(&self) -> &'static str {
        if self.chain_endpoint.is_some() {
            "--subtensor.chain_endpoint (--chain.url)"
        } else {
            "--subtensor.network"
        }
    }

    /// Whether any flag (or its variable) names a chain.
    pub fn is_given(&self) -> bool {
        self.chain_endpoint.is_some() || self.network.is_some()
    }

    /// The flags for `endpoint` on `netuid`, e.g. for a child process or a test.
    pub fn for_endpoint(endpoint: &str, netuid: u16) -> Self {
        Self {
            network: None,
            chain_endpoint: Some(endpoint.to_owned()),
            netuid,
        }
    }
}

/// The logging flags of every binary: `--log.format pretty|json` and the SDK's
/// `--logging.debug` / `--logging.trace`, which raise the project's own logs to that level
/// (over `RUST_LOG`, which stays the way to tune other crates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(
        long = "log.format",
        env = "BT_LOG_FORMAT",
        default_value = "pretty",
        global = true
    )]
    pub format: crate::telemetry::LogFormat,
    /// The project's logs at debug level.
    #[arg(long = "logging.debug", global = true)]
    pub debug: bool,
    /// The project's logs at trace level.
    #[arg(long = "logging.trace", global = true)]
    pub trace: bool,
}

impl LogArgs {
    /// Installs the global subscriber (see [`crate::telemetry::init_at`]).
    pub fn init(&self, default_filter: &str) {
        let level = match (self.trace, self.debug) {
            (true, _) => Some("trace"),
            (false, true) => Some("debug"),
            (false, false) => None,
        };
        crate::telemetry::init_at(self.format, default_filter, level);
    }
}

impl WalletArgs {
    /// The wallet these flags name, with `~` expanded.
    pub fn wallet(&self) -> Wallet {
        Wallet::new(&self.path, &self.name, &self.hotkey)
    }

    /// Loads the hotkey pair. An encrypted hotkey takes its password from the SDK's `BT_PW_…`
    /// variable, else from a terminal prompt. Errors name the keyfile.
    pub fn load_hotkey(&self) -> Result<Keypair, WalletError> {
        self.wallet().load_hotkey(&PasswordSource::interactive())
    }

    /// Loads the coldkey pair (normally encrypted): password from the SDK's `BT_PW_…` variable,
    /// else a terminal prompt. Errors name the keyfile.
    pub fn load_coldkey(&self) -> Result<Keypair, WalletError> {
        self.wallet().load_coldkey(&PasswordSource::interactive())
    }

    /// The hotkey's public key (from `<hotkey>pub.txt` when present). Errors name the keyfile.
    pub fn hotkey_account(&self) -> Result<AccountId, WalletError> {
        self.wallet().hotkey_account()
    }
}

/// `keys …`: create, restore and inspect the hotkey and coldkey of the wallet named by
/// [`WalletArgs`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a new hotkey from a fresh 12-word mnemonic and print the mnemonic once.
    NewHotkey {
        /// Replace an existing hotkey file (its key is lost unless its mnemonic is kept).
        #[arg(long)]
        overwrite: bool,
    },
    /// Re-create the hotkey from its mnemonic (asked on the terminal when not given).
    RegenHotkey {
        /// The mnemonic words, quoted. Prefer the prompt: flags end up in shell history.
        #[arg(long, value_name = "WORDS")]
        mnemonic: Option<String>,
        /// Replace an existing hotkey file.
        #[arg(long)]
        overwrite: bool,
    },
    /// Create a new password-encrypted coldkey (as btcli does) and print its mnemonic once.
    ///
    /// The keyfile is `$NACL`-encrypted, with `coldkeypub.txt` beside it. The password comes
    /// from the SDK's `BT_PW_<keyfile path>` variable when set, else it is asked twice.
    NewColdkey {
        /// Write the coldkey unencrypted: anyone who can read the file can then spend its funds.
        #[arg(long)]
        no_password: bool,
        /// Replace an existing coldkey file (its key is lost unless its mnemonic is kept).
        #[arg(long)]
        overwrite: bool,
    },
    /// Re-create the coldkey from its mnemonic (asked on the terminal when not given).
    ///
    /// Encrypted as `new-coldkey` does.
    RegenColdkey {
        /// The mnemonic words, quoted. Prefer the prompt: flags end up in shell history.
        #[arg(long, value_name = "WORDS")]
        mnemonic: Option<String>,
        /// Write the coldkey unencrypted.
        #[arg(long)]
        no_password: bool,
        /// Replace an existing coldkey file.
        #[arg(long)]
        overwrite: bool,
    },
    /// Print the wallet name, keyfile path, SS58 address and public key of the hotkey.
    Show {
        /// Also print the mnemonic, seed and private key.
        #[arg(long)]
        show_secrets: bool,
    },
}

/// Runs a `keys` subcommand against the wallet named by `wallet`, writing to `out`. Coldkey
/// passwords come from the SDK's `BT_PW_…` variable, else the terminal.
pub fn run(cmd: &KeysCommand, wallet: &WalletArgs, out: &mut impl Write) -> anyhow::Result<()> {
    run_with(cmd, wallet, &PasswordSource::interactive(), out)
}

/// [`run`] with the coldkey password taken from `passwords`.
pub fn run_with(
    cmd: &KeysCommand,
    wallet: &WalletArgs,
    passwords: &PasswordSource,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let wallet = wallet.wallet();
    match cmd {
        KeysCommand::NewHotkey { overwrite } => {
            let (pair, phrase) = wallet
                .create_hotkey(*overwrite)
                .context("while creating the hotkey")?;
            let phrase = SecretString::from(phrase);
            writeln!(out, "Created hotkey {}", wallet.hotkey_path().display())?;
            writeln!(out, "ss58 address: {}", pair.account_id())?;
            write_mnemonic(
                out,
                "this hotkey (keys regen-hotkey --mnemonic \"…\")",
                &phrase,
            )?;
        }
        KeysCommand::RegenHotkey {
            mnemonic,
            overwrite,
        } => {
            let phrase = mnemonic_or_prompt(mnemonic.as_deref(), "hotkey")?;
            let pair = wallet
                .regenerate_hotkey(phrase.expose_secret(), *overwrite)
                .context("while restoring the hotkey")?;
            writeln!(out, "Restored hotkey {}", wallet.hotkey_path().display())?;
            writeln!(out, "ss58 address: {}", pair.account_id())?;
        }
        KeysCommand::NewColdkey {
            no_password,
            overwrite,
        } => {
            let password = coldkey_password(&wallet, *no_password, passwords)?;
            let protection = protection(password.as_ref());
            let (pair, phrase) = wallet
                .create_coldkey(protection, *overwrite)
                .context("while creating the coldkey")?;
            let phrase = SecretString::from(phrase);
            writeln!(out, "Created coldkey {}", wallet.coldkey_path().display())?;
            describe_coldkey(&pair, password.is_some(), out)?;
            write_mnemonic(
                out,
                "this coldkey and its funds (keys regen-coldkey)",
                &phrase,
            )?;
        }
        KeysCommand::RegenColdkey {
            mnemonic,
            no_password,
            overwrite,
        } => {
            let phrase = mnemonic_or_prompt(mnemonic.as_deref(), "coldkey")?;
            let pair = Keypair::from_mnemonic(phrase.expose_secret(), None)
                .context("while restoring the coldkey")?;
            let password = coldkey_password(&wallet, *no_password, passwords)?;
            wallet
                .set_coldkey(&pair, protection(password.as_ref()), *overwrite)
                .context("while restoring the coldkey")?;
            writeln!(out, "Restored coldkey {}", wallet.coldkey_path().display())?;
            describe_coldkey(&pair, password.is_some(), out)?;
        }
        KeysCommand::Show { show_secrets } => show(&wallet, *show_secrets, out)?,
    }
    Ok(())
}

/// The mnemonic given with `--mnemonic`, else typed on the terminal (not echoed).
fn mnemonic_or_prompt(given: Option<&str>, key: &str) -> anyhow::Result<SecretString> {
    match given {
        Some(words) => Ok(SecretString::from(words.to_owned())),
        None => rpassword::prompt_password(format!("Enter the {key} mnemonic: "))
            .map(SecretString::from)
            .context("while reading the mnemonic from the terminal"),
    }
}

/// The one-time mnemonic, with the warning that it alone restores `what`.
fn write_mnemonic(out: &mut impl Write, what: &str, phrase: &SecretString) -> anyhow::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "WARNING: write this mnemonic down and keep it safe. It is shown only once and"
    )?;
    writeln!(out, "is the only way to restore {what}:")?;
    writeln!(out)?;
    writeln!(out, "    {}", phrase.expose_secret())?;
    Ok(())
}

fn protection(password: Option<&SecretString>) -> Protection<'_> {
    password.map_or(Protection::Plain, Protection::Encrypted)
}

fn describe_coldkey(pair: &Keypair, encrypted: bool, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "ss58 address: {}", pair.account_id())?;
    if encrypted {
        writeln!(out, "encrypted:    yes ($NACL, the password you gave)")?;
    } else {
        writeln!(
            out,
            "encrypted:    NO: anyone who can read the file can spend this coldkey's funds"
        )?;
    }
    Ok(())
}

/// The password a new coldkey file is encrypted with (`None`: `--no-password`): the one in
/// `passwords`, the SDK's `BT_PW_…` variable, or typed twice on the terminal.
fn coldkey_password(
    wallet: &Wallet,
    no_password: bool,
    passwords: &PasswordSource,
) -> anyhow::Result<Option<SecretString>> {
    if no_password {
        return Ok(None);
    }
    let path = wallet.coldkey_path();
    let without_prompt = PasswordSource {
        allow_prompt: false,
        ..passwords.clone()
    };
    match without_prompt.resolve(&path, "encrypt") {
        Ok(password) => return Ok(Some(password)),
        Err(WalletError::PasswordRequired { .. }) if passwords.allow_prompt => {}
        Err(error) => {
            return Err(error).context("no password for the new coldkey (or pass --no-password)");
        }
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt).map(SecretString::from).with_context(|| {
            format!(
                "no terminal to ask for the coldkey password: run it in a terminal, set {} as the bittensor SDK does, or pass --no-password",
                crate::wallet::password::env_var_name(&path)
            )
        })
    };
    let first = ask(&format!(
        "Choose a password to encrypt the coldkey {}: ",
        path.display()
    ))?;
    if first.expose_secret().is_empty() {
        anyhow::bail!(
            "the coldkey password is empty (pass --no-password for an unencrypted coldkey)"
        );
    }
    let second = ask("Retype the password: ")?;
    if first.expose_secret() != second.expose_secret() {
        anyhow::bail!("the two passwords differ; nothing was written");
    }
    Ok(Some(first))
}

fn show(wallet: &Wallet, show_secrets: bool, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "wallet:       {}", wallet.name)?;
    writeln!(out, "hotkey:       {}", wallet.hotkey)?;
    writeln!(out, "path:         {}", wallet.hotkey_path().display())?;
    let (id, pair) = if show_secrets {
        let pair = wallet
            .load_hotkey(&PasswordSource::interactive())
            .context("while loading the hotkey")?;
        (pair.account_id(), Some(pair))
    } else {
        let id = wallet
            .hotkey_account()
            .context("while loading the hotkey")?;
        (id, None)
    };
    writeln!(out, "ss58 address: {id}")?;
    writeln!(out, "public key:   {}", id.to_hex())?;
    match wallet.coldkey_account() {
        Ok(cold) => writeln!(out, "coldkey:      {cold}")?,
        Err(WalletError::NotFound { .. }) => writeln!(out, "coldkey:      (none)")?,
        Err(e) => writeln!(out, "coldkey:      (unreadable: {e})")?,
    }
    if let Some(pair) = pair {
        writeln!(
            out,
            "mnemonic:     {}",
            pair.mnemonic().unwrap_or("(not stored)")
        )?;
        match pair.seed() {
            Some(seed) => writeln!(out, "secret seed:  0x{}", hex::encode(seed))?,
            None => writeln!(out, "secret seed:  (not stored)")?,
        }
        writeln!(
            out,
            "private key:  0x{}",
            hex::encode(*pair.to_secret_key_bytes())
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(flatten)]
        wallet: WalletArgs,
        #[command(subcommand)]
        keys: KeysCommand,
    }

    fn args_in(dir: &std::path::Path) -> WalletArgs {
        WalletArgs {
            path: dir.to_path_buf(),
            name: "w".to_owned(),
            hotkey: "h".to_owned(),
        }
    }

    fn run_to_string(cmd: KeysCommand, wallet: &WalletArgs) -> anyhow::Result<String> {
        let mut out = Vec::new();
        run(&cmd, wallet, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn dotted_wallet_flags_parse_with_btcli_names() {
        let cli = TestCli::try_parse_from([
            "bin",
            "--wallet.path",
            "/tmp/w",
            "--wallet.name",
            "cold",
            "--wallet.hotkey",
            "hot",
            "show",
            "--show-secrets",
        ])
        .unwrap();
        assert_eq!(cli.wallet.path, PathBuf::from("/tmp/w"));
        assert_eq!(cli.wallet.name, "cold");
        assert_eq!(cli.wallet.hotkey, "hot");
        assert_eq!(cli.keys, KeysCommand::Show { show_secrets: true });
    }

    #[test]
    fn wallet_flags_name_the_sdk_environment_variables() {
        let command = TestCli::command();
        let envs: Vec<_> = command
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        for name in ["BT_WALLET_PATH", "BT_WALLET_NAME", "BT_WALLET_HOTKEY"] {
            assert!(envs.iter().any(|e| e == name), "{name} in {envs:?}");
        }
    }

    #[test]
    fn the_default_path_is_expanded_to_home() {
        let args = WalletArgs {
            path: PathBuf::from(DEFAULT_WALLET_PATH),
            name: "default".to_owned(),
            hotkey: "default".to_owned(),
        };
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap();
        assert_eq!(
            args.wallet().hotkey_path(),
            home.join(".bittensor/wallets/default/hotkeys/default")
        );
    }

    #[test]
    fn new_hotkey_prints_the_address_and_a_mnemonic_that_restores_it() {
        let dir = tempfile::tempdir().unwrap();
        let args = args_in(dir.path());
        let out = run_to_string(KeysCommand::NewHotkey { overwrite: false }, &args).unwrap();
        assert!(out.contains("WARNING"));
        let id = args.hotkey_account().unwrap();
        assert!(out.contains(&id.to_ss58()));
        let phrase = out.lines().last().unwrap().trim().to_owned();
        assert_eq!(phrase.split(' ').count(), 12);

        let again = run_to_string(KeysCommand::NewHotkey { overwrite: false }, &args);
        let err = format!("{:#}", again.unwrap_err());
        assert!(err.contains("already exists"), "{err}");

        let other = tempfile::tempdir().unwrap();
        let restored_args = args_in(other.path());
        let regen = KeysCommand::RegenHotkey {
            mnemonic: Some(phrase),
            overwrite: false,
        };
        run_to_string(regen, &restored_args).unwrap();
        assert_eq!(restored_args.load_hotkey().unwrap().account_id(), id);
    }

    fn with_password(cmd: KeysCommand, wallet: &WalletArgs, password: &str) -> String {
        let mut out = Vec::new();
        let passwords = PasswordSource::given(SecretString::from(password));
        run_with(&cmd, wallet, &passwords, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn new_coldkey_is_encrypted_and_its_mnemonic_restores_it_under_another_password() {
        use crate::wallet::keyfile;
        let dir = tempfile::tempdir().unwrap();
        let args = args_in(dir.path());
        let new = KeysCommand::NewColdkey {
            no_password: false,
            overwrite: false,
        };
        let out = with_password(new.clone(), &args, "first pass");
        let wallet = args.wallet();
        assert!(keyfile::is_encrypted(&wallet.coldkey_path()), "{out}");
        let id = wallet.coldkey_account().unwrap();
        assert!(
            out.contains(&id.to_ss58()) && out.contains("encrypted:    yes"),
            "{out}"
        );
        let given = |p: &str| PasswordSource::given(SecretString::from(p));
        assert_eq!(
            wallet
                .load_coldkey(&given("first pass"))
                .unwrap()
                .account_id(),
            id
        );
        assert!(wallet.load_coldkey(&given("wrong")).is_err());
        let phrase = out.lines().last().unwrap().trim().to_owned();
        assert_eq!(phrase.split(' ').count(), 12);

        // An existing coldkey is never replaced without --overwrite.
        let mut sink = Vec::new();
        let err = run_with(&new, &args, &given("x"), &mut sink).unwrap_err();
        assert!(format!("{err:#}").contains("already exists"), "{err:#}");

        let regen = KeysCommand::RegenColdkey {
            mnemonic: Some(phrase),
            no_password: false,
            overwrite: true,
        };
        let out = with_password(regen, &args, "second pass");
        assert!(out.contains(&id.to_ss58()), "{out}");
        assert_eq!(
            wallet
                .load_coldkey(&given("second pass"))
                .unwrap()
                .account_id(),
            id
        );
        assert!(wallet.load_coldkey(&given("first pass")).is_err());
    }

    #[test]
    fn a_coldkey_without_a_password_says_so_and_none_available_names_the_variable() {
        use crate::wallet::keyfile;
        let dir = tempfile::tempdir().unwrap();
        let args = args_in(dir.path());
        let out = with_password(
            KeysCommand::NewColdkey {
                no_password: true,
                overwrite: false,
            },
            &args,
            "unused",
        );
        assert!(!keyfile::is_encrypted(&args.wallet().coldkey_path()));
        assert!(out.contains("encrypted:    NO"), "{out}");

        // No password given, none in the environment, no prompt: nothing is written.
        let other = tempfile::tempdir().unwrap();
        let args = args_in(other.path());
        let mut sink = Vec::new();
        let err = run_with(
            &KeysCommand::NewColdkey {
                no_password: false,
                overwrite: false,
            },
            &args,
            &PasswordSource::non_interactive(),
            &mut sink,
        )
        .unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("BT_PW_") && err.contains("--no-password"),
            "{err}"
        );
        assert!(!args.wallet().coldkey_path().exists());
    }

    #[test]
    fn show_prints_secrets_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let args = args_in(dir.path());
        let (pair, phrase) = args.wallet().create_hotkey(false).unwrap();
        let plain = run_to_string(
            KeysCommand::Show {
                show_secrets: false,
            },
            &args,
        )
        .unwrap();
        assert!(plain.contains(&pair.account_id().to_ss58()));
        assert!(plain.contains(&pair.account_id().to_hex()));
        assert!(plain.contains("coldkey:      (none)"));
        assert!(!plain.contains(&phrase));
        let secret = run_to_string(KeysCommand::Show { show_secrets: true }, &args).unwrap();
        assert!(secret.contains(&phrase));
        assert!(secret.contains(&hex::encode(*pair.to_secret_key_bytes())));
    }

    #[test]
    fn show_names_the_missing_keyfile() {
        let dir = tempfile::tempdir().unwrap();
        let args = args_in(dir.path());
        let err = run_to_string(
            KeysCommand::Show {
                show_secrets: false,
            },
            &args,
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("hotkeys/h"), "{err:#}");
    }
}

/// A clap value parser for a probability or share: a number in [0, 1].
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!("{x} is not between 0 and 1"))
    }
}

/// How a command ends: `Ok` exits 0; an error is printed to stderr as one line, `error: ` and its
/// causes joined by `: `, and exits 1. A command's error is the user's to act on (a missing file,
/// a flag, a node that is not up), never a crash, so no backtrace is printed whatever
/// `RUST_BACKTRACE` says; panics still print theirs.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", error_line(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// `error: ` and the error's causes in one line (a cause that repeats the one before is left
/// out; line breaks inside a message become spaces).
pub fn error_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if parts.last().is_some_and(|last| last.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    format!("error: {}", parts.join(": "))
}

#[cfg(test)]
mod error_line_tests {
    use super::*;

    #[test]
    fn an_error_and_its_causes_are_one_line() {
        let error = anyhow::anyhow!("connection refused\n(os error 111)")
            .context("while reading the chain head")
            .context("--chain.url http://127.0.0.1:9944: is the devchain node running?");
        assert_eq!(
            error_line(&error),
            "error: --chain.url http://127.0.0.1:9944: is the devchain node running?: while \
             reading the chain head: connection refused (os error 111)"
        );
        // A cause already quoted by the message before it is not repeated.
        let error = anyhow::anyhow!("disk full").context("writing x: disk full");
        assert_eq!(error_line(&error), "error: writing x: disk full");
    }
}
