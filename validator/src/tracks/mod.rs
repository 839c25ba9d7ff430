//! The scoring tracks a validator runs each epoch.
//!
//! | module | what |
//! |---|---|
//! | [`model`] | the model track: fetch, check, evaluate and spot-check committed models, then score |
//! | [`labels`] | the label track: batches with hidden known-answer tasks, labels collected, scored |

pub mod labels;
pub mod model;
