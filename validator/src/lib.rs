//! The validator: queries miners with btauth/1-signed requests, scores them and sets weights.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the command line (clap), every flag also from an env var |
//! | [`query`] | `validator query`: one signed request, an operator's signed curl |

pub mod cli;
pub mod query;
