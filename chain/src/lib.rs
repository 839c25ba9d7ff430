//! The dev chain: a pure state machine that follows Subtensor's rules, and the node around it.
//!
//! | module | what |
//! |---|---|
//! | [`yuma`] | Yuma Consensus (legacy and Yuma 3 bond paths) and the emission split; pure math |
//! | [`state`] | the chain state machine: accounts, subnets, registration, weights, epochs; pure |
//! | [`simulate`] | `devchain simulate`: Yuma Consensus on given inputs through the state machine |

pub mod simulate;
pub mod state;
pub mod yuma;
