//! Voicemail: an in-process SIP user agent that the call machine reaches like any other target. It answers calls
//! diverted to a mailbox, plays the greeting and a beep, and records the message as a WAV file with a database
//! row.
//!
//! - [`uas`]: the SIP side, sans-IO (dialogs, 2xx retransmission, INFO keys, re-INVITE, CANCEL, BYE).
//! - [`prompts`]: the spoken prompts, embedded in the binary.
//! - [`recorder`]: WAV files whose header stays valid while they grow, and recovery of those cut short.
//! - [`service`]: the driver: the SIP socket, one task per call with its RTP socket, the store.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod pin;
pub mod prompts;
pub mod recorder;
pub mod service;
pub mod uas;
