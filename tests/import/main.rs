//! Imports end to end over HTTP: the console (or console processes started from the built
//! binary, to be killed for real) moves a generated dump into the Tencent IM sandbox, and the
//! sandbox must then hold exactly the dump.

#[path = "../console/common.rs"]
#[allow(dead_code)]
mod common;
mod crash;
mod expect;
mod harness;
mod insight;
mod netease;
mod rongcloud;
mod runs;
mod uncertain;
