//! The Tencent IM client against the Tencent IM sandbox, over real HTTP on 127.0.0.1.
//! No database needed.

mod callbacks;
mod calls;
mod common;
mod friends;
mod outbound;
mod recalls;
mod rules;
mod seam;
