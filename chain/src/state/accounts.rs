//! Balances and stake: `transfer`, `add_stake`, `remove_stake` (signed by the coldkey).
//!
//! The dev chain has one token: stake is rao moved 1:1 from the free balance to a (hotkey,
//! coldkey, netuid) position, without Subtensor's alpha pools.

use subnet_common::chain::types::{Event, NetUid};
use subnet_common::keys::AccountId;

use super::{ChainError, State};

impl State {
    pub(super) fn transfer(
        &mut self,
        from: &AccountId,
        to: &AccountId,
        amount: u64,
    ) -> Result<Vec<Event>, ChainError> {
        let available = self.free(from);
        if available < amount {
            return Err(ChainError::InsufficientBalance {
                available,
                needed: amount,
            });
        }
        if from != to {
            let received = self
                .free(to)
                .checked_add(amount)
                .ok_or(ChainError::BalanceOverflow)?;
            self.set_free(from, available - amount);
            self.set_free(to, received);
        }
        Ok(vec![Event::Transfer {
            from: *from,
            to: *to,
            amount,
        }])
    }

    pub(super) fn add_stake(
        &mut self,
        coldkey: &AccountId,
        hotkey: &AccountId,
        netuid: NetUid,
        amount: u64,
    ) -> Result<Vec<Event>, ChainError> {
        let subnet = self.subnet(netuid)?;
        if amount == 0 {
            return Err(ChainError::AmountTooLow);
        }
        if self.hotkey_owner(hotkey).is_none() {
            return Err(ChainError::HotKeyAccountNotExists { hotkey: *hotkey });
        }
        let available = self.free(coldkey);
        if available < amount {
            return Err(ChainError::NotEnoughBalanceToStake {
                available,
                needed: amount,
            });
        }
        let staked = subnet
            .stake_of(hotkey, coldkey)
            .checked_add(amount)
            .ok_or(ChainError::BalanceOverflow)?;
        self.set_free(coldkey, available - amount);
        self.subnet_mut(netuid)?
            .stakes
            .insert((*hotkey, *coldkey), staked);
        Ok(vec![Event::StakeAdded {
            coldkey: *coldkey,
            hotkey: *hotkey,
            netuid,
            amount,
        }])
    }

    pub(super) fn remove_stake(
        &mut self,
        coldkey: &AccountId,
        hotkey: &AccountId,
        netuid: NetUid,
        amount: u64,
    ) -> Result<Vec<Event>, ChainError> {
        let subnet = self.subnet(netuid)?;
        if amount == 0 {
            return Err(ChainError::AmountTooLow);
        }
        let available = subnet.stake_of(hotkey, coldkey);
        if available < amount {
            return Err(ChainError::NotEnoughStakeToWithdraw {
                available,
                needed: amount,
            });
        }
        let free = self
            .free(coldkey)
            .checked_add(amount)
            .ok_or(ChainError::BalanceOverflow)?;
        let stakes = &mut self.subnet_mut(netuid)?.stakes;
        if available == amount {
            stakes.remove(&(*hotkey, *coldkey));
        } else {
            stakes.insert((*hotkey, *coldkey), available - amount);
        }
        self.set_free(coldkey, free);
        Ok(vec![Event::StakeRemoved {
            coldkey: *coldkey,
            hotkey: *hotkey,
            netuid,
            amount,
        }])
    }
}
