//! Both sides of a migration as connections: which provider each side is, the fields its
//! provider asks for, and what is set (secrets only as hints). Shared by the UI and the server.

use super::SecretHint;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

string_enum!(
    /// Which end of the move a connection is.
    Side {
        Source => "source", "Source (the old system)";
        Target => "target", "Target (the new IM)";
    }
);

impl Side {
    /// The other end: where sync sends this side's events.
    pub fn other(self) -> Side {
        match self {
            Side::Source => Side::Target,
            Side::Target => Side::Source,
        }
    }
}

/// How a connection field is entered and kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    /// A whole number (an app id).
    Number,
    /// An `https://` address (`http://` only to this machine).
    Url,
    /// One of `choices`.
    Choice,
    /// Write-only: sealed at rest, shown as its last four characters.
    Secret,
}

/// One option of a `choice` field (a region and the address it stands for).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FieldChoice {
    pub id: String,
    pub label: String,
    /// What choosing it means (the base URL of a region).
    #[serde(default)]
    pub detail: String,
}

/// A field a provider's connection needs, as its provider describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FieldSpec {
    pub id: String,
    pub label: String,
    pub kind: FieldKind,
    pub required: bool,
    /// Where to find the value and what it is for.
    #[serde(default)]
    pub help: String,
    #[serde(default)]
    pub placeholder: String,
    #[serde(default)]
    pub choices: Vec<FieldChoice>,
    /// Shown and required only when another field has this value: `["region", "custom"]`.
    #[serde(default)]
    pub only_when: Option<(String, String)>,
}

/// A provider the registry knows, for the new-migration form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProviderInfo {
    pub id: String,
    pub label: String,
    /// It can be the old system.
    pub source: bool,
    /// It can be the new IM (imports go into it).
    pub target: bool,
}

/// One side's connection, without any secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConnectionView {
    pub side: Side,
    pub provider: String,
    pub provider_label: String,
    /// What the provider asks for, in order.
    pub fields: Vec<FieldSpec>,
    /// Public fields as set.
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub values: BTreeMap<String, Value>,
    /// Secret fields that are set: their last characters and who set them when.
    pub secrets: BTreeMap<String, SecretHint>,
    /// Every required field is set.
    pub complete: bool,
    /// Points at a sandbox this console started ("Rehearse in sandbox").
    pub sandbox: bool,
    /// The address imshift calls, when the connection has one.
    pub endpoint: Option<String>,
    /// Test connection exists for this provider.
    pub can_test: bool,
    /// Rehearse in sandbox exists for this provider.
    pub can_sandbox: bool,
    /// Whether this provider has anything to connect to on this side, in words when not.
    pub note: Option<String>,
}

/// Set or rotate a connection's fields, by field id. Secrets are write-only: leave one out
/// (or empty) to keep the stored value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConnectionInput {
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub fields: BTreeMap<String, Value>,
}
