//! Which miners the model track evaluates this epoch (pure: chain data in, a plan out).
//!
//! A miner is a candidate when its hotkey's latest commitment is a model commitment
//! (`model2:<competition>:<binding>`, [`ModelCommitment`]) for this competition, stored at least `block_delay` blocks
//! before the seed block (so nobody commits after seeing the samples), and its uid publishes an
//! axon. Every other uid of the metagraph is listed with the reason it is skipped.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use subnet_common::chain::types::{AxonInfo, Commitment, Metagraph};
use subnet_common::keys::AccountId;
use subnet_common::protocol::ModelCommitment;

use super::outcome::Outcome;

/// A miner whose model is evaluated this epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The miner's uid.
    pub uid: u16,
    /// Its hotkey (the btauth receiver).
    pub hotkey: AccountId,
    /// The commitment's binding of a manifest hash to `hotkey` (64 lowercase hex digits); the
    /// manifest itself is learnt, and checked against it, when the artifact is fetched.
    pub binding: String,
    /// The block of the commitment.
    pub commit_block: u64,
    /// Where its axon serves, e.g. `http://10.0.0.1:8091/`.
    pub base_url: reqwest::Url,
}

/// One uid's place in the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// Evaluated.
    Candidate(Candidate),
    /// Not evaluated this epoch.
    Skipped {
        /// The uid.
        uid: u16,
        /// Its hotkey.
        hotkey: AccountId,
        /// The block of its model commitment, when it has one.
        commit_block: Option<u64>,
        /// Why it is skipped.
        outcome: Outcome,
        /// In words.
        reason: String,
    },
}

impl Planned {
    /// The uid.
    pub fn uid(&self) -> u16 {
        match self {
            Self::Candidate(c) => c.uid,
            Self::Skipped { uid, .. } => *uid,
        }
    }
}

/// The plan for every uid of `metagraph`, in uid order. A commitment counts only when its hotkey
/// still holds the uid it names (a deregistered miner's commitment does not follow the uid).
pub fn plan(
    metagraph: &Metagraph,
    commitments: &[Commitment],
    competition_id: &str,
    seed_block: u64,
    block_delay: u64,
) -> Vec<Planned> {
    let mut latest: BTreeMap<&AccountId, &Commitment> = BTreeMap::new();
    for commitment in commitments {
        let entry = latest.entry(&commitment.hotkey).or_insert(commitment);
        if commitment.block > entry.block {
            *entry = commitment;
        }
    }
    let mut neurons: Vec<_> = metagraph.neurons.iter().collect();
    neurons.sort_by_key(|n| n.uid);
    neurons
        .into_iter()
        .map(|neuron| {
            let skipped = |commit_block: Option<u64>, outcome, reason: String| Planned::Skipped {
                uid: neuron.uid,
                hotkey: neuron.hotkey,
                commit_block,
                outcome,
                reason,
            };
            let Some(raw) = latest.get(&neuron.hotkey) else {
                return skipped(None, Outcome::NoCommitment, "no commitment on chain".into());
            };
            let model = match ModelCommitment::decode(&raw.data) {
                Ok(model) => model,
                Err(error) => {
                    return skipped(None, Outcome::NoCommitment, error.to_string());
                }
            };
            let commitment = Some(raw.block);
            if model.competition != competition_id {
                return skipped(
                    commitment,
                    Outcome::WrongCompetition,
                    format!(
                        "committed for competition {:?}, this is {competition_id:?}",
                        model.competition
                    ),
                );
            }
            let eligible_from = raw.block.saturating_add(block_delay);
            if seed_block < eligible_from {
                return skipped(
                    commitment,
                    Outcome::TooRecent,
                    format!(
                        "committed at block {}, evaluated from block {eligible_from} (seed block {seed_block})",
                        raw.block
                    ),
                );
            }
            let Some(base_url) = axon_url(&neuron.axon_info) else {
                return skipped(
                    commitment,
                    Outcome::NotServing,
                    "no axon published on chain".into(),
                );
            };
            Planned::Candidate(Candidate {
                uid: neuron.uid,
                hotkey: neuron.hotkey,
                binding: model.binding,
                commit_block: raw.block,
                base_url,
            })
        })
        .collect()
}

/// The HTTP base URL of a published axon, or `None` when none is published (ip or port 0, or
/// an unknown ip type).
pub fn axon_url(axon: &AxonInfo) -> Option<reqwest::Url> {
    if axon.ip == 0 || axon.port == 0 {
        return None;
    }
    let ip = match axon.ip_type {
        4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(axon.ip).ok()?)),
        6 => IpAddr::V6(Ipv6Addr::from(axon.ip)),
        _ => return None,
    };
    let addr = std::net::SocketAddr::new(ip, axon.port);
    reqwest::Url::parse(&format!("http://{addr}/")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use subnet_common::chain::types::NeuronInfo;
    use subnet_common::keys::Keypair;

    fn key(uri: &str) -> AccountId {
        Keypair::from_uri(uri).unwrap().account_id()
    }

    fn neuron(uid: u16, hotkey: AccountId, port: u16) -> NeuronInfo {
        NeuronInfo::registered(
            1,
            uid,
            hotkey,
            hotkey,
            AxonInfo::ipv4(Ipv4Addr::LOCALHOST, port),
        )
    }

    fn commit(hotkey: &AccountId, uid: u16, block: u64, text: &str) -> Commitment {
        Commitment {
            hotkey: *hotkey,
            uid,
            block,
            data: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn sorts_every_uid_into_candidate_or_a_reason() {
        let keys: Vec<AccountId> = ["//A", "//B", "//C", "//D", "//E", "//F", "//G"]
            .iter()
            .map(|u| key(u))
            .collect();
        let hash = "ab".repeat(32);
        let metagraph = Metagraph {
            netuid: 1,
            block: 200,
            neurons: (0..7)
                .map(|uid| {
                    neuron(
                        uid,
                        keys[uid as usize],
                        if uid == 5 { 0 } else { 8000 + uid },
                    )
                })
                .collect(),
        };
        let commitments = vec![
            commit(&keys[0], 0, 50, &format!("model2:tiny:{hash}")),
            commit(&keys[0], 0, 40, "model2:tiny:old"),
            // The legacy unbound form.
            commit(&keys[1], 1, 60, &format!("model:tiny:{hash}")),
            commit(&keys[2], 2, 60, "hello"),
            commit(&keys[3], 3, 60, &format!("model2:other:{hash}")),
            commit(&keys[4], 4, 95, &format!("model2:tiny:{hash}")),
            commit(&keys[5], 5, 10, &format!("model2:tiny:{hash}")),
            commit(&key("//Gone"), 6, 10, &format!("model2:tiny:{hash}")),
        ];
        let planned = plan(&metagraph, &commitments, "tiny", 100, 10);
        let outcomes: Vec<Option<Outcome>> = planned
            .iter()
            .map(|p| match p {
                Planned::Candidate(_) => None,
                Planned::Skipped { outcome, .. } => Some(*outcome),
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                None,
                Some(Outcome::NoCommitment),
                Some(Outcome::NoCommitment),
                Some(Outcome::WrongCompetition),
                Some(Outcome::TooRecent),
                Some(Outcome::NotServing),
                Some(Outcome::NoCommitment),
            ]
        );
        let Planned::Candidate(c) = &planned[0] else {
            panic!("uid 0 is a candidate")
        };
        assert_eq!((c.commit_block, c.binding.as_str()), (50, hash.as_str()));
        let Planned::Skipped { reason, .. } = &planned[1] else {
            panic!("uid 1 is skipped")
        };
        assert!(reason.contains("unbound"), "{reason}");
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:8000/");
    }

    #[test]
    fn a_commitment_exactly_block_delay_old_is_evaluated() {
        let k = key("//A");
        let metagraph = Metagraph {
            netuid: 1,
            block: 100,
            neurons: vec![neuron(0, k, 9000)],
        };
        let text = format!("model2:tiny:{}", "0".repeat(64));
        let at = |block| plan(&metagraph, &[commit(&k, 0, block, &text)], "tiny", 100, 10);
        assert!(matches!(at(90)[0], Planned::Candidate(_)));
        assert!(matches!(
            at(91)[0],
            Planned::Skipped {
                outcome: Outcome::TooRecent,
                ..
            }
        ));
    }

    #[test]
    fn axon_urls_cover_ipv4_ipv6_and_unpublished() {
        let mut axon = neuron(0, key("//A"), 8091).axon_info;
        assert_eq!(axon_url(&axon).unwrap().as_str(), "http://127.0.0.1:8091/");
        axon.ip_type = 6;
        axon.ip = 1;
        assert_eq!(axon_url(&axon).unwrap().as_str(), "http://[::1]:8091/");
        axon.ip = 0;
        assert_eq!(axon_url(&axon), None);
    }
}
