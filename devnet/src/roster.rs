//! Who takes part: the miners' roles and the validators, with their dev coldkeys and hotkeys.
//!
//! Coldkeys are the dev genesis' funded accounts (`//Miner1` … for miners, `//Bob` … for
//! validators); each hotkey is derived from its coldkey's URI (`//Miner1//devnet`), so a run is
//! reproducible and the keys say nothing secret.

use std::path::PathBuf;

use subnet_common::keys::{KeyError, Keypair};

use crate::attacks::Attack;

/// Funded miner coldkeys of the dev genesis: `//Miner1` … `//Miner12`.
pub const MINER_COLDKEYS: usize = 12;

/// `--extra-model NAME=DIR`: a model directory of the user's, served and committed by a miner of
/// its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraModel {
    /// Shown in the tables; lower-case letters, digits and `-`, not a built-in role's name.
    pub name: String,
    /// The artifact directory.
    pub dir: PathBuf,
}

impl ExtraModel {
    /// Parses `NAME=DIR` (the clap value parser).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, dir) = named(text, "DIR")?;
        Ok(Self {
            name,
            dir: PathBuf::from(dir),
        })
    }
}

/// `--extra-labeler NAME=CMD`: one more label miner whose labeler is a program
/// (`miner labelers simulate --answer-with CMD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraLabeler {
    /// Shown in the tables (the same rules as [`ExtraModel::name`]).
    pub name: String,
    /// The `sh -c` command line that answers each task.
    pub command: String,
}

impl ExtraLabeler {
    /// Parses `NAME=CMD` (the clap value parser).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, command) = named(text, "CMD")?;
        Ok(Self {
            name,
            command: command.to_owned(),
        })
    }
}

/// Splits `NAME=VALUE` and checks the name: 1-32 lower-case letters, digits or `-`, not a
/// built-in role's name.
fn named<'a>(text: &'a str, value: &str) -> Result<(String, &'a str), String> {
    let (name, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME={value}"))?;
    let valid = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(format!(
            "{name:?}: a name is 1-32 lower-case letters, digits or -"
        ));
    }
    if Role::BUILT_IN_NAMES.contains(&name)
        || ["sybil", "validator", "extra", "bot-", "replay"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
    {
        return Err(format!("{name:?} is the name of a built-in role"));
    }
    if rest.trim().is_empty() {
        return Err(format!("{text:?}: nothing after ="));
    }
    Ok((name.to_owned(), rest))
}

/// The built-in bots of `--roster labels` (`miner labelers simulate --bot NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LabelBot {
    /// A or B at random.
    Random,
    /// Always A.
    AlwaysA,
    /// Always tie.
    AlwaysTie,
    /// Surface rules (more of the prompt's words, then longer): the checker or language-model
    /// bot that reads only the surface.
    Shallow,
}

impl LabelBot {
    /// The `--bot` value (the role is `bot-` and this).
    pub fn name(self) -> &'static str {
        match self {
            LabelBot::Random => "random",
            LabelBot::AlwaysA => "always-a",
            LabelBot::AlwaysTie => "always-tie",
            LabelBot::Shallow => "shallow",
        }
    }
}

/// How a label miner's labeler is simulated.
#[derive(Debug, Clone, PartialEq)]
pub enum Labeling {
    /// A simulated person of this accuracy (`--accuracy`).
    Person(f64),
    /// A built-in bot (`--bot`).
    Bot(LabelBot),
    /// A program the user brought (`--answer-with`), by `--extra-labeler` index.
    Program(u8),
    /// A person (90%) recording its choices to the replay file of the run.
    Recorder,
    /// Replaying the recorder's choices.
    Replayer,
}

/// Which miners take part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RosterKind {
    /// `--miners` of strong, weak, copier, broken, and `--label-miners`.
    Standard,
    /// A front-runner of the strong miner, a selective miner (a model of its own served to the
    /// first validator only), strong and weak, then attackers of the strong model (changed
    /// config, permuted units, weight noise, sharpened logits) and one model of its own on three
    /// hotkeys (sybils), and at most one of `--label-miners` (the funded coldkeys run out).
    /// Three validators unless `--validators` says otherwise. `--miners` is ignored.
    Adversarial,
    /// Strong and weak (their models answer the label prompts), then label miners: careful
    /// (90%), careless (60%), random, always-a, always-tie, a shallow bot and one person's
    /// answers replayed on three hotkeys. `--miners` and `--label-miners` are ignored.
    Labels,
}

/// What a participant does, and so what it should earn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Fine-tuned with the larger budget: should earn the most model-track incentive.
    Strong,
    /// Fine-tuned with a few steps: should earn less than the strong miner.
    Weak,
    /// Serves and commits a byte-identical copy of the strong model, later: a duplicate, 0.
    Copier,
    /// Commits an artifact whose `config.json` does not match its weights while serving a
    /// different one: the validators' hash check fails, 0.
    Broken,
    /// Serves the strong model and commits the strong miner's commitment bytes verbatim, in a
    /// block before the strong miner's (as if it had read them from the transaction pool): they
    /// bind the model to the strong miner's hotkey, not to its own, so a hash mismatch, 0.
    FrontRunner,
    /// The strong model's weights under a config with another `pad_token_id`, later.
    ChangedConfig,
    /// The strong model with its MLP units permuted (the same function), later.
    Permuted,
    /// The strong model with 3% weight noise, later.
    Noisy,
    /// The strong model with every logit × 1.25, later.
    Sharpened,
    /// A model of its own (fine-tuned like the strong one, another seed), committed first and
    /// served to the first validator only; the others' requests are refused. With three
    /// validators the one it serves holds a third of the stake, under κ: 0.
    Selective,
    /// One model of its own (fine-tuned like the weak one, another seed) on three hotkeys
    /// (1-based index): together they should earn no more than one.
    Sybil(u8),
    /// `--roster labels`: a label miner whose labeler is right 90% of the time.
    LabelCareful,
    /// `--roster labels`: right 60% of the time.
    LabelCareless,
    /// `--roster labels`: a built-in bot answers (`miner labelers simulate --bot`).
    LabelBot(LabelBot),
    /// `--roster labels`: one person on three hotkeys (1-based index): the first labels (90%)
    /// and records its choices, the others replay them on their own batches.
    LabelReplay(u8),
    /// Label miner whose simulated labeler answers 95% of checkable tasks correctly.
    LabelAccurate,
    /// Label miner whose simulated labeler is right 55% of the time.
    LabelInaccurate,
    /// A model directory the user brought (`--extra-model`, 1-based index), committed after the
    /// strong model.
    Extra(u8),
    /// A label miner whose labeler is a program the user brought (`--extra-labeler`, 1-based
    /// index).
    ExtraLabeler(u8),
    /// A staked validator (1-based index).
    Validator(u8),
}

impl Role {
    /// The model-track roles in the order `--miners` takes them.
    pub const MODEL: [Role; 4] = [Role::Strong, Role::Weak, Role::Copier, Role::Broken];
    /// The model-track roles of `--roster adversarial`.
    pub const ADVERSARIAL: [Role; 11] = [
        Role::FrontRunner,
        Role::Selective,
        Role::Strong,
        Role::Weak,
        Role::ChangedConfig,
        Role::Permuted,
        Role::Noisy,
        Role::Sharpened,
        Role::Sybil(1),
        Role::Sybil(2),
        Role::Sybil(3),
    ];
    /// The label-track roles in the order `--label-miners` takes them.
    pub const LABEL: [Role; 2] = [Role::LabelAccurate, Role::LabelInaccurate];
    /// The roles of `--roster labels`.
    pub const LABEL_ATTACKS: [Role; 11] = [
        Role::Strong,
        Role::Weak,
        Role::LabelCareful,
        Role::LabelCareless,
        Role::LabelBot(LabelBot::Random),
        Role::LabelBot(LabelBot::AlwaysA),
        Role::LabelBot(LabelBot::AlwaysTie),
        Role::LabelBot(LabelBot::Shallow),
        Role::LabelReplay(1),
        Role::LabelReplay(2),
        Role::LabelReplay(3),
    ];

    /// Names of the roles without an index, which an extra model may not take.
    pub const BUILT_IN_NAMES: [&'static str; 14] = [
        "strong",
        "selective",
        "weak",
        "copier",
        "broken",
        "front-runner",
        "changed-config",
        "permuted",
        "noisy",
        "sharpened",
        "label-good",
        "label-bad",
        "careful",
        "careless",
    ];

    /// Short name: wallet name, log file stem, table cell (an extra model's table cell is the
    /// name the user gave, [`Member::label`]).
    pub fn name(self) -> String {
        match self {
            Role::Strong => "strong".into(),
            Role::Weak => "weak".into(),
            Role::Copier => "copier".into(),
            Role::Broken => "broken".into(),
            Role::FrontRunner => "front-runner".into(),
            Role::ChangedConfig => "changed-config".into(),
            Role::Permuted => "permuted".into(),
            Role::Noisy => "noisy".into(),
            Role::Sharpened => "sharpened".into(),
            Role::Selective => "selective".into(),
            Role::Sybil(i) => format!("sybil{i}"),
            Role::LabelCareful => "careful".into(),
            Role::LabelCareless => "careless".into(),
            Role::LabelBot(bot) => format!("bot-{}", bot.name()),
            Role::LabelReplay(i) => format!("replay{i}"),
            Role::LabelAccurate => "label-good".into(),
            Role::LabelInaccurate => "label-bad".into(),
            Role::Extra(i) => format!("extra{i}"),
            Role::ExtraLabeler(i) => format!("extra-labeler{i}"),
            Role::Validator(i) => format!("validator{i}"),
        }
    }

    /// How a label miner's labeler is simulated (`None`: not a label miner).
    pub fn labeling(self) -> Option<Labeling> {
        match self {
            Role::LabelAccurate => Some(Labeling::Person(0.95)),
            Role::LabelInaccurate => Some(Labeling::Person(0.55)),
            Role::LabelCareful => Some(Labeling::Person(0.9)),
            Role::LabelCareless => Some(Labeling::Person(0.6)),
            Role::LabelBot(bot) => Some(Labeling::Bot(bot)),
            Role::LabelReplay(1) => Some(Labeling::Recorder),
            Role::LabelReplay(_) => Some(Labeling::Replayer),
            Role::ExtraLabeler(i) => Some(Labeling::Program(i)),
            _ => None,
        }
    }

    /// Whether this is a validator.
    pub fn is_validator(self) -> bool {
        matches!(self, Role::Validator(_))
    }

    /// Whether this is a label miner (a simulated labeler or a program answers its form).
    pub fn is_label_miner(self) -> bool {
        self.labeling().is_some()
    }

    /// Whether this miner serves and commits a model.
    pub fn is_model_miner(self) -> bool {
        !self.is_validator() && !self.is_label_miner()
    }

    /// What this role does to the strong model, if it copies it (and so commits after it).
    pub fn attack(self) -> Option<Attack> {
        match self {
            Role::ChangedConfig => Some(Attack::ChangedConfig),
            Role::Permuted => Some(Attack::PermutedUnits),
            Role::Noisy => Some(Attack::Noise(0.03)),
            Role::Sharpened => Some(Attack::Sharpen(1.25)),
            _ => None,
        }
    }

    /// Whether this role commits after the others (it copies a model committed before).
    pub fn commits_late(self) -> bool {
        matches!(self, Role::Copier | Role::Extra(_)) || self.attack().is_some()
    }
}

/// One participant.
#[derive(Debug, Clone)]
pub struct Member {
    /// What it does.
    pub role: Role,
    /// Dev URI of the coldkey that pays its registration (and stake).
    pub coldkey_uri: String,
    /// Its hotkey.
    pub hotkey: Keypair,
    /// What the tables call it: the role's name, or an extra model's own.
    pub label: String,
}

/// What the user brought: `--extra-model` and `--extra-labeler`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Brought<'a> {
    /// Model directories.
    pub models: &'a [ExtraModel],
    /// Labeler programs.
    pub labelers: &'a [ExtraLabeler],
}

/// The participants: `kind`'s model miners (for the standard roster the first `miners`), the
/// extra models, `label_miners` label miners, the extra labelers and `validators` validators
/// (clamped to the roles and the validators' funded dev accounts). More miners than
/// [`MINER_COLDKEYS`], or a name given twice, is an error naming the flags.
pub fn roster(
    kind: RosterKind,
    miners: u8,
    brought: Brought<'_>,
    label_miners: u8,
    validators: u8,
) -> anyhow::Result<Vec<Member>> {
    let extra = brought.models;
    const VALIDATOR_COLDKEYS: [&str; 4] = ["//Bob", "//Charlie", "//Dave", "//Eve"];
    let model: &[Role] = match kind {
        RosterKind::Standard => &Role::MODEL[..usize::from(miners).min(Role::MODEL.len())],
        RosterKind::Adversarial => &Role::ADVERSARIAL,
        RosterKind::Labels => &Role::LABEL_ATTACKS,
    };
    let extras = (1..=extra.len()).map(|i| Role::Extra(u8::try_from(i).unwrap_or(u8::MAX)));
    let label_miners = match kind {
        RosterKind::Labels => 0,
        // Eleven model miners leave one funded coldkey.
        RosterKind::Adversarial => label_miners
            .min(u8::try_from(MINER_COLDKEYS.saturating_sub(model.len())).unwrap_or(u8::MAX)),
        RosterKind::Standard => label_miners,
    };
    let label = Role::LABEL.iter().copied().take(usize::from(label_miners));
    let extra_labelers = (1..=brought.labelers.len())
        .map(|i| Role::ExtraLabeler(u8::try_from(i).unwrap_or(u8::MAX)));
    let miner_roles: Vec<Role> = model
        .iter()
        .copied()
        .chain(extras)
        .chain(label)
        .chain(extra_labelers)
        .collect();
    if miner_roles.len() > MINER_COLDKEYS {
        anyhow::bail!(
            "--extra-model/--extra-labeler: {} miners in all, but the dev genesis funds \
             {MINER_COLDKEYS} miner coldkeys; bring fewer (or fewer label miners)",
            miner_roles.len()
        );
    }
    let mut names = std::collections::BTreeSet::new();
    for name in extra
        .iter()
        .map(|m| &m.name)
        .chain(brought.labelers.iter().map(|l| &l.name))
    {
        if !names.insert(name) {
            anyhow::bail!("--extra-model/--extra-labeler: the name {name:?} is given twice");
        }
    }
    let mut members = Vec::new();
    for (i, role) in miner_roles.into_iter().enumerate() {
        let label = match role {
            Role::Extra(n) => extra[usize::from(n) - 1].name.clone(),
            Role::ExtraLabeler(n) => brought.labelers[usize::from(n) - 1].name.clone(),
            _ => role.name(),
        };
        members.push(member(role, format!("//Miner{}", i + 1), label)?);
    }
    for (i, coldkey) in VALIDATOR_COLDKEYS
        .iter()
        .take(usize::from(validators))
        .enumerate()
    {
        let role = Role::Validator(u8::try_from(i + 1).unwrap_or(u8::MAX));
        members.push(member(role, (*coldkey).to_owned(), role.name())?);
    }
    Ok(members)
}

fn member(role: Role, coldkey_uri: String, label: String) -> Result<Member, KeyError> {
    let hotkey = Keypair::from_uri(&format!("{coldkey_uri}//devnet"))?;
    Ok(Member {
        role,
        coldkey_uri,
        hotkey,
        label,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_full_roster_has_distinct_funded_coldkeys_and_hotkeys() {
        let members = roster(RosterKind::Standard, 4, Brought::default(), 2, 2).unwrap();
        assert_eq!(members.len(), 8);
        let coldkeys: HashSet<_> = members.iter().map(|m| m.coldkey_uri.clone()).collect();
        let hotkeys: HashSet<_> = members.iter().map(|m| m.hotkey.account_id()).collect();
        assert_eq!((coldkeys.len(), hotkeys.len()), (8, 8));
        assert_eq!(members[0].role, Role::Strong);
        assert_eq!(members[4].role, Role::LabelAccurate);
        assert_eq!(members[4].coldkey_uri, "//Miner5");
        assert_eq!(members[7].role, Role::Validator(2));
        assert_eq!(members[7].coldkey_uri, "//Charlie");
    }

    #[test]
    fn roles_are_taken_in_order() {
        let members = roster(RosterKind::Standard, 2, Brought::default(), 0, 1).unwrap();
        let roles: Vec<Role> = members.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::Strong, Role::Weak, Role::Validator(1)]);
    }

    #[test]
    fn the_label_roster_has_two_models_and_every_labeler_attack() {
        let members = roster(RosterKind::Labels, 4, Brought::default(), 2, 2).unwrap();
        let names: Vec<String> = members.iter().map(|m| m.role.name()).collect();
        assert_eq!(
            names,
            [
                "strong",
                "weak",
                "careful",
                "careless",
                "bot-random",
                "bot-always-a",
                "bot-always-tie",
                "bot-shallow",
                "replay1",
                "replay2",
                "replay3",
                "validator1",
                "validator2"
            ]
        );
        let label_miners = members.iter().filter(|m| m.role.is_label_miner()).count();
        assert_eq!(label_miners, 9, "--label-miners is ignored");
        assert!(members.len() - 2 <= MINER_COLDKEYS);
    }

    #[test]
    fn the_adversarial_roster_has_every_attacker_on_its_own_funded_coldkey() {
        let members = roster(RosterKind::Adversarial, 0, Brought::default(), 2, 2).unwrap();
        let names: Vec<String> = members.iter().map(|m| m.role.name()).collect();
        assert_eq!(
            names,
            [
                "front-runner",
                "selective",
                "strong",
                "weak",
                "changed-config",
                "permuted",
                "noisy",
                "sharpened",
                "sybil1",
                "sybil2",
                "sybil3",
                "label-good",
                "validator1",
                "validator2"
            ],
            "the two label miners asked for are clamped to the one funded coldkey left"
        );
        let coldkeys: HashSet<_> = members.iter().map(|m| m.coldkey_uri.clone()).collect();
        assert_eq!(coldkeys.len(), members.len());
        assert_eq!(members[11].coldkey_uri, "//Miner12");
        assert!(members.iter().filter(|m| m.role.commits_late()).count() == 4);
        assert!(members[..11].iter().all(|m| m.role.is_model_miner()));
    }

    #[test]
    fn extras_take_their_own_names_and_are_bounded_by_the_funded_coldkeys() {
        let model = |name: &str| ExtraModel::parse(&format!("{name}=/tmp/{name}")).unwrap();
        let bot = ExtraLabeler::parse("bot=echo a").unwrap();
        let models = [model("mine"), model("b")];
        let brought = Brought {
            models: &models,
            labelers: std::slice::from_ref(&bot),
        };
        let members = roster(RosterKind::Standard, 2, brought, 2, 1).unwrap();
        let labels: Vec<&str> = members.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "strong",
                "weak",
                "mine",
                "b",
                "label-good",
                "label-bad",
                "bot",
                "validator1"
            ]
        );
        assert_eq!(members[2].role, Role::Extra(1));
        assert!(members[2].role.is_model_miner() && members[2].role.commits_late());
        assert_eq!(members[6].role, Role::ExtraLabeler(1));
        assert!(members[6].role.is_label_miner() && !members[6].role.is_model_miner());
        assert_eq!(members[6].coldkey_uri, "//Miner7");
        let one = [model("one")];
        let err = roster(
            RosterKind::Adversarial,
            0,
            Brought {
                models: &one,
                ..Brought::default()
            },
            2,
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("--extra-model"), "{err}");
        let twice = [model("bot")];
        let err = roster(
            RosterKind::Standard,
            1,
            Brought {
                models: &twice,
                labelers: std::slice::from_ref(&bot),
            },
            0,
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
        assert_eq!(bot.command, "echo a");
        assert!(ExtraLabeler::parse("bot=").is_err());
        // The label roster's names are taken; a bot of the user's may still be "always-a".
        for taken in ["careful", "bot-random", "replay1"] {
            assert!(
                ExtraLabeler::parse(&format!("{taken}=echo a")).is_err(),
                "{taken}"
            );
        }
        assert!(ExtraLabeler::parse("always-a=echo a").is_ok());
    }

    #[test]
    fn only_label_miners_have_an_accuracy() {
        assert_eq!(Role::LabelAccurate.labeling(), Some(Labeling::Person(0.95)));
        assert_eq!(
            Role::LabelInaccurate.labeling(),
            Some(Labeling::Person(0.55))
        );
        assert_eq!(Role::Strong.labeling(), None);
        assert_eq!(Role::LabelReplay(1).labeling(), Some(Labeling::Recorder));
        assert_eq!(Role::LabelReplay(3).labeling(), Some(Labeling::Replayer));
    }
}
