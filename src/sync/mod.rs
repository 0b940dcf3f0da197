//! Coexistence sync: events from either side of a migration, relayed to the other.
//!
//! This first slice is the inbound door: `POST /hooks/{migration_id}/{side}` receives a
//! provider's callbacks (or a self-built system's relay batches), checks them through the
//! side's [`crate::providers::Provider`], and stores each event durably before answering.

pub mod inbound;

pub use inbound::router;
