//! Typed ids: a migration's, a run's and an upload's id are different types, so passing one
//! where another is expected (or two in the wrong order) does not compile. Each is a `Uuid`
//! underneath and looks exactly like one everywhere it leaves the program: JSON (serde
//! transparent), PostgreSQL (a `uuid` column, sqlx transparent), the OpenAPI document (a
//! string in uuid format), paths and text (`Display` / `FromStr`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One newtype over `Uuid` per name, with everything an id needs.
macro_rules! typed_ids {
    ($($(#[$m:meta])* $name:ident;)+) => {$(
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "ssr", derive(sqlx::Type, utoipa::ToSchema), sqlx(transparent))]
        #[cfg_attr(feature = "ssr", schema(value_type = String, format = Uuid))]
        pub struct $name(Uuid);

        impl $name {
            /// The all-zero id: no row has it (a placeholder until the real id is known).
            pub const NIL: Self = Self(Uuid::nil());

            /// A fresh random id.
            #[cfg(feature = "ssr")]
            pub fn new_v4() -> Self {
                Self(Uuid::new_v4())
            }

            /// The id as a plain `Uuid`, for what is not typed (SQL text, logs, other crates).
            pub const fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, uuid::Error> {
                s.parse().map(Self)
            }
        }
    )+};
}

typed_ids! {
    /// A migration's id (`im_migrations.id`).
    MigrationId;
    /// An import run's id (`import_runs.id`).
    RunId;
    /// An uploaded dump's id (`dump_uploads.id`).
    UploadId;
}
