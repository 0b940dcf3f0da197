//! The NetEase Yunxin sandbox over real HTTP on 127.0.0.1: requests signed here with
//! `sign::checksum`, form bodies, answers read as a client reads them. No database needed.

mod accounts;
mod auth;
mod common;
mod faults;
mod messages;
mod sync;
mod teams;
