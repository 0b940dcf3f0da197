//! The RongCloud sandbox over real HTTP on 127.0.0.1: requests signed here with
//! `SHA1(secret + Nonce + Timestamp)`, form bodies with repeated keys, answers read as a
//! client reads them. No database needed.

mod auth;
mod client;
mod common;
mod faults;
mod groups;
mod messages;
mod routing;
mod users;
