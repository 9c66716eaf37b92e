//! Measurements of a trial that are not part of training itself.

pub mod field;
pub mod modes;
pub mod spectrum;
