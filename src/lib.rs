//! ganlab: a workbench for studying the training stability of GANs.
//!
//! Data flows one way: an experiment file ([`spec`]) expands into resolved trial
//! configurations; each trial builds its set-up once ([`setup`]: samples from [`data`],
//! players from [`nets`], an objective from [`game`]), trains it ([`train`]: update schemes
//! over the game's field and the trial state) while the probes ([`probe`]) measure it, and the
//! records ([`record`]) go to the store ([`store`]), which writes the tables of SPEC section 6.
//! [`trial`] runs one trial start to end (or resumes it), [`study`] runs them all, and
//! [`saved_trial`] probes a recorded trial again.

pub mod backend;
pub mod batch;
pub mod bench;
pub mod data;
pub mod error;
pub mod fault;
pub mod game;
pub mod interrupt;
pub mod net_ops;
pub mod nets;
pub mod prior;
pub mod probe;
pub mod quality;
pub mod record;
pub mod report;
pub mod rng;
pub mod saved_trial;
pub mod setup;
pub mod slurm;
pub mod spec;
pub mod store;
pub mod study;
pub mod table;
pub mod train;
pub mod trial;
pub mod trial_states;

pub use error::{ConfigError, Result};
