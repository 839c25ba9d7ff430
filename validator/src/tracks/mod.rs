//! The scoring tracks a validator runs each epoch.
//!
//! | module | what |
//! |---|---|
//! | [`model`] | the model track: fetch, check, evaluate and spot-check committed models, then score |

pub mod model;
