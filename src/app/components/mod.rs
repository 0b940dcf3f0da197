//! Pieces the pages share.

mod data;
mod layout;
mod parts;

pub use data::{resource, Res};
pub use layout::{use_me, Layout};
pub use parts::*;
