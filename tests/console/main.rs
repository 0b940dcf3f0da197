//! Black-box tests: the real console on a free port over HTTP, against a fresh PostgreSQL
//! database per test (`#[sqlx::test]`).

mod access;
mod audit;
mod common;
mod dumps;
mod layout;
mod migrations;
mod ops;
mod overview;
mod providers;
mod relay;
mod roles;
mod security;
mod sync;
mod sync_inbound;
mod sync_netease;
mod sync_netease_gaps;
mod sync_rongcloud;
mod team;
mod tokens;
mod upgrade;
