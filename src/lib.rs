//! ganlab: a workbench for studying the training stability of GANs.
//!
//! Data flows one way: an experiment file ([`spec`]) expands into resolved trial
//! configurations; each trial builds a game (players from [`nets`], an objective from
//! [`game`], samples from [`data`]), trains it ([`train`]) while the probes ([`probe`])
//! measure it, and the store ([`store`]) records the tables of SPEC section 6.

pub mod activation;
pub mod backend;
pub mod bench;
pub mod data;
pub mod error;
pub mod game;
pub mod nets;
pub mod probe;
pub mod report;
pub mod rng;
pub mod spec;
pub mod store;
pub mod study;
pub mod train;

pub use error::{ConfigError, Result};
