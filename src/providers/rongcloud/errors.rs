//! RongCloud errors: what went wrong, whether to retry (reference §1.4 and §6.4), and what a
//! person should do about it. As for the other providers, the sentences say what happened,
//! never what happens next: the caller (an import run, Test connection) says that.
//!
//! RongCloud answers an error with a non-200 HTTP status *and* a JSON body
//! `{"code":<biz code>,"errorMessage":"…"}` (§1.3): the business code decides, the HTTP
//! status decides only for a code imshift does not know.

use crate::providers::ErrorClass;

#[derive(Debug, thiserror::Error)]
pub enum RongcloudError {
    /// The connection is configured wrongly (bad URL, empty key); nothing was sent.
    #[error("RongCloud configuration: {0}")]
    Config(String),
    /// Refused before sending (a batch larger than the API takes).
    #[error("RongCloud {api}: {message}")]
    Invalid { api: String, message: String },
    /// Connect, TLS, timeout, reading the body.
    #[error("RongCloud {api}: network error: {message}")]
    Transport { api: String, message: String },
    /// The outbound guard refused the address before connecting (`providers::outbound`).
    #[error("RongCloud {api}: not connecting: {message}")]
    Blocked { api: String, message: String },
    /// A redirect, which provider clients never follow.
    #[error(
        "RongCloud {api}: the server answered HTTP {status}, a redirect; it was not followed \
         (set the base URL to the address that answers)"
    )]
    Redirect { api: String, status: u16 },
    #[error(
        "RongCloud {api}: the answer is larger than {} MB and was refused without reading it",
        limit >> 20
    )]
    TooLarge { api: String, limit: usize },
    /// An answer without RongCloud's JSON (a gateway or proxy spoke). The body is never shown.
    #[error(
        "RongCloud {api}: the server answered HTTP {status} with a body that is not RongCloud's \
         JSON ({bytes} bytes): {}",
        explain_status(*.status)
    )]
    Http {
        api: String,
        status: u16,
        bytes: usize,
    },
    /// A 200 whose body is not `{"code":…}`.
    #[error("RongCloud {api}: unreadable answer: {message}")]
    Decode { api: String, message: String },
    /// `{"code":N,"errorMessage":…}` with N ≠ 200.
    #[error(
        "RongCloud {api} code {code} (HTTP {status}): {} (server said: {message})",
        explain_answer(*.status, *.code)
    )]
    Api {
        api: String,
        status: u16,
        code: i64,
        message: String,
    },
}

impl RongcloudError {
    /// RongCloud's business `code`, when the server gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            RongcloudError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            RongcloudError::Api { status, code, .. } => class_of(*status, *code),
            RongcloudError::Transport { .. } | RongcloudError::Decode { .. } => {
                ErrorClass::Retryable
            }
            RongcloudError::Http { status, .. } => status_class(*status),
            RongcloudError::Config(_)
            | RongcloudError::Blocked { .. }
            | RongcloudError::Redirect { .. } => ErrorClass::Auth,
            RongcloudError::Invalid { .. } | RongcloudError::TooLarge { .. } => {
                ErrorClass::Permanent
            }
        }
    }

    /// The request may have been applied although no answer says so: a timeout, a dropped
    /// connection, a gateway error, or RongCloud's own internal error or timeout (1000, 1050),
    /// which can come after the write.
    pub fn ambiguous(&self) -> bool {
        match self {
            RongcloudError::Transport { .. }
            | RongcloudError::Decode { .. }
            | RongcloudError::Http { .. } => true,
            RongcloudError::Api { code, .. } => matches!(code, 1000 | 1050),
            _ => false,
        }
    }

    /// The domain may be at fault (§1.1: the SDKs switch to the backup domain on network
    /// errors and HTTP 5xx).
    pub fn switch_domain(&self) -> bool {
        match self {
            RongcloudError::Transport { .. } => true,
            RongcloudError::Http { status, .. } | RongcloudError::Api { status, .. } => {
                *status >= 500
            }
            _ => false,
        }
    }

    /// Test connection's words: it sends one request and nothing sends it again.
    pub fn for_test_connection(&self) -> String {
        let next = match self.class() {
            ErrorClass::RateLimited => {
                " Nothing was retried: the quota is per App Key and shared with any import running on these keys; press Test connection again in a few seconds."
            }
            ErrorClass::Retryable => {
                " Nothing was retried: this is usually transient; press Test connection again in a moment, and if it keeps failing, check RongCloud's status page."
            }
            _ => "",
        };
        format!("{self}{next}")
    }
}

/// Retry class of a RongCloud business `code` (§1.4, imshift's policy in §6.4: never retry
/// 1001–1007, 1009 or 2007 automatically). `Permanent` for codes it does not list: see
/// [`class_of`] for those, which asks the HTTP status.
pub fn classify(code: i64) -> ErrorClass {
    match code {
        200 => ErrorClass::Ok,
        // "Data to delete does not exist": the delete is done.
        1015 => ErrorClass::Ok,
        1008 => ErrorClass::RateLimited,
        1000 | 1050 => ErrorClass::Retryable,
        // Wrong secret or signature, app locked, method or service not enabled, the dev
        // environment's user cap: a person fixes the app or the connection, and every further
        // request would be refused the same way.
        1001 | 1004 | 1006 | 1007 | 1009 | 2007 => ErrorClass::Auth,
        _ => ErrorClass::Permanent,
    }
}

/// The class of an answer: its code when §1.4 lists it, else its HTTP status.
pub fn class_of(status: u16, code: i64) -> ErrorClass {
    if known(code) {
        classify(code)
    } else {
        status_class(status)
    }
}

/// What an HTTP status alone says (§1.4's HTTP table; 430 is RongCloud's "not enabled").
fn status_class(status: u16) -> ErrorClass {
    match status {
        200 => ErrorClass::Ok,
        429 => ErrorClass::RateLimited,
        408 | 500 | 502 | 503 | 504 => ErrorClass::Retryable,
        // 404: no such API at this address, a wrong base URL for every request alike.
        401 | 403 | 404 | 430 => ErrorClass::Auth,
        _ => ErrorClass::Permanent,
    }
}

const KNOWN: &[i64] = &[
    200, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1015, 1016, 1050, 2007,
];

fn known(code: i64) -> bool {
    KNOWN.contains(&code)
}

/// What a code means and what to do about it, in one sentence.
pub fn explain(code: i64) -> &'static str {
    match code {
        200 => "Success.",
        1000 => "RongCloud had an internal error (transient on its side; it asks to try again later).",
        1001 => "The App Secret does not match the App Key: copy the App Secret again from the RongCloud console (refreshing it there also invalidates every user token).",
        1002 => "RongCloud refused a parameter (a missing or malformed value, an unknown user or group): see the server's words.",
        1003 => "RongCloud received no form data: this is an imshift bug, report it.",
        1004 => "RongCloud refused the signature: check the App Secret and that this machine's clock is right.",
        1005 => "A value is longer than RongCloud allows: see the failed record.",
        1006 => "The app is locked or deleted on RongCloud: check it in the RongCloud console.",
        1007 => "This API is restricted for the app: ask RongCloud to open it, or check the plan in the console.",
        1008 => "Requests went over RongCloud's rate limit for this API (per App Key, 100/s for most APIs; also the answer when broadcast is not enabled).",
        1009 => "The service this API belongs to is not enabled for the app (for friends: RongCloud's profile hosting, enabled by ticket): enable it in the RongCloud console or by a ticket.",
        1015 => "The data to delete does not exist on RongCloud: the delete is already done.",
        1016 => "Too many keep-alive chatrooms on the app.",
        1050 => "A RongCloud internal service timed out (transient; the request may have been applied).",
        2007 => "The app is in RongCloud's development environment, which allows 100 registered users: move the app to production in the RongCloud console.",
        _ => "Unlisted RongCloud code: look it up in RongCloud's Server API status code list.",
    }
}

/// What an HTTP status means when RongCloud's body gave no code, or an unlisted one.
pub fn explain_status(status: u16) -> &'static str {
    match status {
        400 => "RongCloud refused the request as malformed.",
        401 => "RongCloud refused the App Key or signature: check the App Key, the App Secret and this machine's clock.",
        403 => "RongCloud refused the operation for this app.",
        404 => "No such RongCloud API at this address: check the base URL (it is the domain alone, such as https://api.rong-api.com).",
        405 => "The group would have more members than RongCloud allows (3000): the whole request was refused.",
        429 => "Requests went over RongCloud's rate limit for this API.",
        430 => "The service is not enabled for the app: enable it in the RongCloud console or by a ticket.",
        500 => "RongCloud had an internal error (transient).",
        502 | 503 => "A gateway in front of RongCloud failed (transient).",
        504 => "RongCloud's gateway timed out (transient; the request may have been applied).",
        _ => "An unexpected HTTP status for RongCloud's Server API.",
    }
}

/// The sentence for an answer: the code's when §1.4 lists it, else the status's.
fn explain_answer(status: u16, code: i64) -> &'static str {
    if known(code) {
        explain(code)
    } else {
        explain_status(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: i64) -> RongcloudError {
        RongcloudError::Api {
            api: "group/join".into(),
            status,
            code,
            message: "said".into(),
        }
    }

    #[test]
    fn classes_follow_the_reference() {
        assert_eq!(classify(200), ErrorClass::Ok);
        assert_eq!(classify(1015), ErrorClass::Ok);
        assert_eq!(classify(1008), ErrorClass::RateLimited);
        for c in [1000, 1050] {
            assert_eq!(classify(c), ErrorClass::Retryable, "{c}");
        }
        // §6.4: never retried automatically.
        for c in [1001, 1004, 1006, 1007, 1009, 2007] {
            assert_eq!(classify(c), ErrorClass::Auth, "{c}");
        }
        for c in [1002, 1003, 1005, 1016] {
            assert_eq!(classify(c), ErrorClass::Permanent, "{c}");
        }
        // An unlisted code is judged by its HTTP status.
        assert_eq!(class_of(429, 4242), ErrorClass::RateLimited);
        assert_eq!(class_of(504, 4242), ErrorClass::Retryable);
        assert_eq!(class_of(401, 4242), ErrorClass::Auth);
        assert_eq!(class_of(405, 4242), ErrorClass::Permanent);
        assert_eq!(class_of(400, 1008), ErrorClass::RateLimited);
    }

    #[test]
    fn every_documented_code_and_status_has_its_own_sentence() {
        let unknown = explain(1);
        for &c in KNOWN {
            assert_ne!(explain(c), unknown, "{c} has no sentence");
        }
        let unknown = explain_status(299);
        for s in [400, 401, 403, 404, 405, 429, 430, 500, 502, 504] {
            assert_ne!(explain_status(s), unknown, "{s} has no sentence");
        }
        let e = api(405, 4242);
        assert!(e.to_string().contains("3000"), "{e}");
        assert!(e.to_string().contains("code 4242 (HTTP 405)"), "{e}");
        let e = api(429, 1008);
        assert!(e.for_test_connection().contains("Nothing was retried"));
        assert!(!e.ambiguous());
        assert!(api(504, 1050).ambiguous());
        assert!(api(504, 1050).switch_domain());
        assert!(!api(400, 1002).switch_domain());
        assert!(RongcloudError::Transport {
            api: "x".into(),
            message: "reset".into()
        }
        .ambiguous());
    }
}
