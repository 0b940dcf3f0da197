//! NetEase Yunxin errors: what went wrong, whether to retry (reference §1.4 and §7.5), and what
//! a person should do about it. As for Tencent, the sentences say what happened, never what
//! happens next: the caller (an import run, Test connection, sync) says that.

use crate::providers::ErrorClass;

#[derive(Debug, thiserror::Error)]
pub enum NeteaseError {
    /// The connection is configured wrongly (bad URL, empty key); nothing was sent.
    #[error("NetEase Yunxin configuration: {0}")]
    Config(String),
    /// Refused before sending (a batch larger than the API takes).
    #[error("NetEase Yunxin {api}: {message}")]
    Invalid { api: String, message: String },
    /// Connect, TLS, timeout, reading the body.
    #[error("NetEase Yunxin {api}: network error: {message}")]
    Transport { api: String, message: String },
    /// The outbound guard refused the address before connecting (`providers::outbound`).
    #[error("NetEase Yunxin {api}: not connecting: {message}")]
    Blocked { api: String, message: String },
    /// A redirect, which provider clients never follow.
    #[error(
        "NetEase Yunxin {api}: the server answered HTTP {status}, a redirect; it was not followed \
         (set the base URL to the address that answers)"
    )]
    Redirect { api: String, status: u16 },
    #[error(
        "NetEase Yunxin {api}: the answer is larger than {} MB and was refused without reading it",
        limit >> 20
    )]
    TooLarge { api: String, limit: usize },
    /// NetEase answers every business outcome with HTTP 200 (§1.3): anything else came from a
    /// gateway. The body is never shown.
    #[error(
        "NetEase Yunxin {api}: the server answered HTTP {status} with a body that is not \
         NetEase's JSON ({bytes} bytes)"
    )]
    Http {
        api: String,
        status: u16,
        bytes: usize,
    },
    /// A 200 whose body is not `{"code":…}`.
    #[error("NetEase Yunxin {api}: unreadable answer: {message}")]
    Decode { api: String, message: String },
    /// `{"code":N,"desc":…}` with N ≠ 200.
    #[error("NetEase Yunxin {api} code {code}: {} (server said: {desc})", explain(*.code))]
    Api {
        api: String,
        code: i64,
        desc: String,
    },
}

impl NeteaseError {
    /// NetEase's `code`, when the server gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            NeteaseError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            NeteaseError::Api { code, .. } => classify(*code),
            NeteaseError::Transport { .. } => ErrorClass::Retryable,
            NeteaseError::Http { status, .. } => match status {
                429 => ErrorClass::RateLimited,
                408 | 500 | 502 | 503 | 504 => ErrorClass::Retryable,
                401 | 403 => ErrorClass::Auth,
                _ => ErrorClass::Permanent,
            },
            NeteaseError::Decode { .. } => ErrorClass::Retryable,
            NeteaseError::Config(_)
            | NeteaseError::Blocked { .. }
            | NeteaseError::Redirect { .. } => ErrorClass::Auth,
            NeteaseError::Invalid { .. } | NeteaseError::TooLarge { .. } => ErrorClass::Permanent,
        }
    }

    /// The request may have been applied although no answer says so (a timeout, a dropped
    /// connection, a gateway error after the server got it).
    pub fn ambiguous(&self) -> bool {
        matches!(
            self,
            NeteaseError::Transport { .. }
                | NeteaseError::Decode { .. }
                | NeteaseError::Http { .. }
        )
    }

    /// Test connection's words: it sends one request and nothing sends it again.
    pub fn for_test_connection(&self) -> String {
        let next = match self.class() {
            ErrorClass::RateLimited => {
                " Nothing was retried: this quota is shared with any import running on these keys; press Test connection again in a few seconds."
            }
            ErrorClass::Retryable => {
                " Nothing was retried: this is usually transient; press Test connection again in a moment, and if it keeps failing, check NetEase's status."
            }
            _ => "",
        };
        format!("{self}{next}")
    }
}

/// Retry class of a NetEase `code` (§1.4, imshift's policy in §7.5: never retry 403, 404,
/// 405, 414, 419, 431 or 801–807 automatically).
pub fn classify(code: i64) -> ErrorClass {
    match code {
        200 => ErrorClass::Ok,
        416 => ErrorClass::RateLimited,
        408 | 415 | 500 | 503 | 514 => ErrorClass::Retryable,
        // Wrong key or secret, IP not allowed, no permission: a person fixes the connection.
        // 414 is also "parameter error", so it stays permanent: [`NeteaseClient`] tells a
        // signature failure from a bad parameter by its `desc` only in Test connection.
        302 | 315 | 403 => ErrorClass::Auth,
        _ => ErrorClass::Permanent,
    }
}

/// What a code means and what to do about it, in one sentence.
pub fn explain(code: i64) -> &'static str {
    match code {
        200 => "Success.",
        201 => "NetEase refused the client version: this is an imshift bug, report it.",
        301 => "The account is banned on NetEase Yunxin: unban it in the NetEase console or leave it out.",
        302 => "The account's token or the App Key/App Secret pair is wrong: copy the App Secret again from the NetEase console.",
        315 => "NetEase refused imshift's IP address: add this machine's outgoing IP to the app's IP allow-list in the NetEase console, or remove the allow-list.",
        403 => "The operation is not allowed for this app, or the App Key is unknown: check the App Key and that the feature is enabled in the NetEase console.",
        404 => "An account or object the request names does not exist on NetEase: import it first (accounts before friends and teams).",
        405 => "A value is longer than NetEase allows: see the failed record.",
        406 => "The object is read-only on NetEase.",
        408 => "NetEase timed out serving the request (a transient error on its side).",
        414 => "NetEase refused a parameter (also its answer to a wrong CheckSum, a clock more than 5 minutes off, and an account registered already): see the server's words.",
        415 => "A network problem on NetEase's side (transient).",
        416 => "Requests went over NetEase's frequency limit for this API (100/s per App Key unless the plan raises it).",
        417 => "NetEase says the operation was already done.",
        419 => "A count is over NetEase's limit (too many items, friends or teams).",
        422 => "The account is disabled on NetEase.",
        423 => "The account is muted on NetEase.",
        431 => "NetEase saw this exact request twice in a short time and refused the repeat; it was not applied a second time.",
        500 => "NetEase had an internal error (a transient error on its side).",
        503 => "NetEase is busy (a transient error on its side).",
        508 => "The recall window has passed.",
        509 => "NetEase could not read the request: this is an imshift bug, report it.",
        514 => "The NetEase service is unavailable (a transient error on its side; it may last minutes).",
        998 | 999 => "NetEase could not unpack or pack the request: this is an imshift bug, report it.",
        801 => "The team would have more members than its limit (200 by default): the whole batch was refused; raise the team's member limit in NetEase or leave members out.",
        802 => "The operator has no permission in this team (not its owner or a manager).",
        803 => "The team does not exist on NetEase (never created, or dismissed): import the team first.",
        804 => "The account is not a member of this team.",
        805 => "The team is of another type than the call expects (a super team?).",
        806 => "The owner has reached NetEase's limit of teams created per account.",
        807 => "The member's state in the team does not allow this.",
        809 => "The account is already a member of the team.",
        810 => "An invitation was sent instead of adding the member directly (imshift always adds without consent, magree=0).",
        811 => "Too many accounts in one team request.",
        812 => "The team is muted.",
        813 => "Only part of the members were added: see the failed records.",
        815 => "The team would have more managers than NetEase allows.",
        _ => "Unlisted NetEase Yunxin code: look it up in NetEase's status code list.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_reference() {
        assert_eq!(classify(200), ErrorClass::Ok);
        assert_eq!(classify(416), ErrorClass::RateLimited);
        for c in [408, 415, 500, 503, 514] {
            assert_eq!(classify(c), ErrorClass::Retryable, "{c}");
        }
        for c in [302, 315, 403] {
            assert_eq!(classify(c), ErrorClass::Auth, "{c}");
        }
        // §7.5: never retried automatically.
        for c in [
            404, 405, 414, 419, 431, 801, 802, 803, 804, 805, 806, 807, 12345,
        ] {
            assert_eq!(classify(c), ErrorClass::Permanent, "{c}");
        }
    }

    #[test]
    fn every_documented_code_has_its_own_sentence() {
        let unknown = explain(1);
        for c in [
            201, 301, 302, 315, 403, 404, 405, 406, 408, 414, 415, 416, 417, 419, 422, 423, 431,
            500, 503, 508, 509, 514, 998, 999, 801, 802, 803, 804, 805, 806, 807, 809, 810, 811,
            812, 813, 815,
        ] {
            assert_ne!(explain(c), unknown, "{c} has no sentence");
        }
        let e = NeteaseError::Api {
            api: "team/add".into(),
            code: 801,
            desc: "over".into(),
        };
        assert!(e.to_string().contains("whole batch was refused"));
        assert!(!e.ambiguous());
        assert!(NeteaseError::Transport {
            api: "x".into(),
            message: "reset".into()
        }
        .ambiguous());
    }
}
