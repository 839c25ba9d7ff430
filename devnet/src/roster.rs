//! Who takes part: the miners' roles and the validators, with their dev coldkeys and hotkeys.
//!
//! Coldkeys are the dev genesis' funded accounts (`//Miner1` … for miners, `//Bob` … for
//! validators); each hotkey is derived from its coldkey's URI (`//Miner1//devnet`), so a run is
//! reproducible and the keys say nothing secret.

use subnet_common::keys::{KeyError, Keypair};

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
    /// Label miner whose simulated labeler answers 95% of checkable tasks correctly.
    LabelAccurate,
    /// Label miner whose simulated labeler is right 55% of the time.
    LabelInaccurate,
    /// A staked validator (1-based index).
    Validator(u8),
}

impl Role {
    /// The model-track roles in the order `--miners` takes them.
    pub const MODEL: [Role; 4] = [Role::Strong, Role::Weak, Role::Copier, Role::Broken];
    /// The label-track roles in the order `--label-miners` takes them.
    pub const LABEL: [Role; 2] = [Role::LabelAccurate, Role::LabelInaccurate];

    /// Short name: wallet name, log file stem, table cell.
    pub fn name(self) -> String {
        match self {
            Role::Strong => "strong".into(),
            Role::Weak => "weak".into(),
            Role::Copier => "copier".into(),
            Role::Broken => "broken".into(),
            Role::LabelAccurate => "label-good".into(),
            Role::LabelInaccurate => "label-bad".into(),
            Role::Validator(i) => format!("validator{i}"),
        }
    }

    /// The simulated labeler's accuracy of a label miner.
    pub fn labeler_accuracy(self) -> Option<f64> {
        match self {
            Role::LabelAccurate => Some(0.95),
            Role::LabelInaccurate => Some(0.55),
            _ => None,
        }
    }

    /// Whether this is a validator.
    pub fn is_validator(self) -> bool {
        matches!(self, Role::Validator(_))
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
}

/// The participants for `miners` model miners, `label_miners` label miners and `validators`
/// validators (clamped to the roles and funded dev accounts available).
pub fn roster(miners: u8, label_miners: u8, validators: u8) -> Result<Vec<Member>, KeyError> {
    const VALIDATOR_COLDKEYS: [&str; 4] = ["//Bob", "//Charlie", "//Dave", "//Eve"];
    let mut members = Vec::new();
    let model = Role::MODEL.iter().take(usize::from(miners));
    let label = Role::LABEL.iter().take(usize::from(label_miners));
    for (i, role) in model.chain(label).enumerate() {
        members.push(member(*role, format!("//Miner{}", i + 1))?);
    }
    for (i, coldkey) in VALIDATOR_COLDKEYS
        .iter()
        .take(usize::from(validators))
        .enumerate()
    {
        let index = u8::try_from(i + 1).unwrap_or(u8::MAX);
        members.push(member(Role::Validator(index), (*coldkey).to_owned())?);
    }
    Ok(members)
}

fn member(role: Role, coldkey_uri: String) -> Result<Member, KeyError> {
    let hotkey = Keypair::from_uri(&format!("{coldkey_uri}//devnet"))?;
    Ok(Member {
        role,
        coldkey_uri,
        hotkey,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_full_roster_has_distinct_funded_coldkeys_and_hotkeys() {
        let members = roster(4, 2, 2).unwrap();
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
        let members = roster(2, 0, 1).unwrap();
        let roles: Vec<Role> = members.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::Strong, Role::Weak, Role::Validator(1)]);
    }

    #[test]
    fn only_label_miners_have_an_accuracy() {
        assert!(Role::LabelAccurate.labeler_accuracy() > Role::LabelInaccurate.labeler_accuracy());
        assert_eq!(Role::Strong.labeler_accuracy(), None);
    }
}
