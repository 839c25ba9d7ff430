//! Neurons: `register` (burned registration, §5.2–5.3), `serve_axon` (§5.1) and `set_commitment`.

use subnet_common::chain::types::{AxonInfo, Event, MAX_COMMITMENT_SIZE, NetUid};
use subnet_common::keys::AccountId;

use super::subnet::StoredCommitment;
use super::{ChainError, State};

/// The `serve_axon` arguments.
pub(super) struct Endpoint {
    pub version: u32,
    pub ip: u128,
    pub port: u16,
    pub ip_type: u8,
    pub protocol: u8,
}

/// Whether `last` is at least `limit` blocks before `now` (0 = never happened or no limit).
pub(super) fn passes_rate_limit(last: u64, limit: u64, now: u64) -> bool {
    limit == 0 || last == 0 || now.saturating_sub(last) >= limit
}

impl State {
    /// The coldkey pays the burn and `hotkey` takes uid n, or the uid chosen by
    /// [`Subnet::uid_to_prune`](super::subnet::Subnet::uid_to_prune) when the subnet is full. The
    /// burn is fixed by the `burn` hyperparameter (no difficulty adjustment on the dev chain).
    pub(super) fn register(
        &mut self,
        coldkey: &AccountId,
        netuid: NetUid,
        hotkey: &AccountId,
    ) -> Result<Vec<Event>, ChainError> {
        let block = self.block;
        let subnet = self.subnet(netuid)?;
        if !subnet.params.registration_allowed {
            return Err(ChainError::SubNetRegistrationDisabled { netuid });
        }
        if subnet.uid_of(hotkey).is_some() {
            return Err(ChainError::HotKeyAlreadyRegisteredInSubNet {
                netuid,
                hotkey: *hotkey,
            });
        }
        let burn = subnet.params.burn;
        let available = self.free(coldkey);
        if available < burn {
            return Err(ChainError::NotEnoughBalanceToPayRegistration { available, burn });
        }
        if self
            .hotkey_owner(hotkey)
            .is_some_and(|owner| owner != *coldkey)
        {
            return Err(ChainError::NonAssociatedColdKey { hotkey: *hotkey });
        }
        let prune = if subnet.n() < subnet.params.max_allowed_uids {
            None
        } else {
            Some(
                subnet
                    .uid_to_prune(block)
                    .ok_or(ChainError::NoNeuronIdAvailable { netuid })?,
            )
        };

        self.set_free(coldkey, available - burn);
        self.hotkey_owners.insert(*hotkey, *coldkey);
        let subnet = self.subnet_mut(netuid)?;
        let (uid, replaced) = match prune {
            None => (subnet.append_neuron(*hotkey, block), None),
            Some(uid) => (uid, subnet.replace_neuron(uid, *hotkey, block)),
        };
        Ok(vec![Event::NeuronRegistered {
            netuid,
            uid,
            hotkey: *hotkey,
            replaced,
            burn,
        }])
    }

    /// Publishes the hotkey's endpoint. Loopback addresses are allowed on the dev chain.
    pub(super) fn serve_axon(
        &mut self,
        hotkey: &AccountId,
        netuid: NetUid,
        endpoint: Endpoint,
    ) -> Result<Vec<Event>, ChainError> {
        let block = self.block;
        let subnet = self.subnet(netuid)?;
        let uid = subnet
            .uid_of(hotkey)
            .ok_or(ChainError::HotKeyNotRegisteredInNetwork {
                netuid,
                hotkey: *hotkey,
            })?;
        let Endpoint {
            version,
            ip,
            port,
            ip_type,
            protocol,
        } = endpoint;
        match ip_type {
            4 if ip > u128::from(u32::MAX) => {
                return Err(ChainError::InvalidIpAddress { ip, ip_type });
            }
            4 | 6 => {}
            _ => return Err(ChainError::InvalidIpType { ip_type }),
        }
        if port == 0 {
            return Err(ChainError::InvalidPort);
        }
        let limit = subnet.params.serving_rate_limit;
        let last = subnet.neurons[usize::from(uid)].axon.block;
        if !passes_rate_limit(last, limit, block) {
            return Err(ChainError::ServingRateLimitExceeded { last, limit });
        }
        self.subnet_mut(netuid)?.neurons[usize::from(uid)].axon = AxonInfo {
            block,
            version,
            ip,
            port,
            ip_type,
            protocol,
        };
        Ok(vec![Event::AxonServed {
            netuid,
            hotkey: *hotkey,
        }])
    }

    /// Stores up to [`MAX_COMMITMENT_SIZE`] bytes for a registered hotkey, with the block.
    pub(super) fn set_commitment(
        &mut self,
        hotkey: &AccountId,
        netuid: NetUid,
        data: &[u8],
    ) -> Result<Vec<Event>, ChainError> {
        let block = self.block;
        let subnet = self.subnet(netuid)?;
        if data.len() > MAX_COMMITMENT_SIZE {
            return Err(ChainError::CommitmentTooLarge {
                len: data.len(),
                max: MAX_COMMITMENT_SIZE,
            });
        }
        if subnet.uid_of(hotkey).is_none() {
            return Err(ChainError::HotKeyNotRegisteredInNetwork {
                netuid,
                hotkey: *hotkey,
            });
        }
        let limit = subnet.params.commitment_rate_limit;
        if let Some(previous) = subnet.commitments.get(hotkey)
            && !passes_rate_limit(previous.block, limit, block)
        {
            return Err(ChainError::CommitmentSetRateLimitExceeded {
                last: previous.block,
                limit,
            });
        }
        self.subnet_mut(netuid)?.commitments.insert(
            *hotkey,
            StoredCommitment {
                block,
                data: data.to_vec(),
            },
        );
        Ok(vec![Event::CommitmentSet {
            netuid,
            hotkey: *hotkey,
        }])
    }
}
