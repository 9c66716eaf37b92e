//! Measurements of a trial that are not part of training itself.

pub mod modes;
