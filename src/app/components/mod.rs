//! Pieces the pages share.

mod layout;
mod parts;

pub use layout::{use_me, Layout};
pub use parts::*;
