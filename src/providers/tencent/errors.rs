//! Tencent IM errors: what went wrong, whether to retry (spec §1.5–1.6), and what a person
//! should do about it. The sentences say what happened, never what happens next: that
//! depends on where the error was met (an import run waits and sends again, then gives up
//! for Retry; Test connection sends once), so the caller says it.

use super::usersig::UserSigError;
use crate::providers::ErrorClass;

#[derive(Debug, thiserror::Error)]
pub enum TencentError {
    /// The adapter is configured wrongly (bad URL, bad admin id); nothing was sent.
    #[error("Tencent IM configuration: {0}")]
    Config(String),
    /// The request was refused client-side before sending (e.g. batch too large).
    #[error("Tencent IM {api}: {message}")]
    Invalid { api: String, message: String },
    /// Network-level failure: connect, TLS, timeout, reading the body.
    #[error("Tencent IM {api}: network error: {message}")]
    Transport { api: String, message: String },
    /// The outbound guard refused the target's address before connecting (see
    /// `providers::outbound`).
    #[error("Tencent IM {api}: not connecting: {message}")]
    Blocked { api: String, message: String },
    /// The target answered with a redirect, which provider clients never follow.
    #[error(
        "Tencent IM {api}: the target answered HTTP {status}, a redirect{}; it was not followed \
         (imshift follows no redirects: set the base URL to the address that answers)",
        location.as_deref().map(|l| format!(" to {l}")).unwrap_or_default()
    )]
    Redirect {
        api: String,
        status: u16,
        /// Where it pointed: scheme, host and port only.
        location: Option<String>,
    },
    /// The answer is larger than the client reads; refused without reading the rest.
    #[error(
        "Tencent IM {api}: the answer is larger than {} MB and was refused without reading it",
        limit >> 20
    )]
    TooLarge { api: String, limit: usize },
    /// The gateway answered with a non-200 status and no Tencent IM error in its body
    /// (normally only 5xx from proxies). The body itself is never shown.
    #[error(
        "Tencent IM {api}: the target answered HTTP {status} with a body that is not Tencent \
         IM's JSON ({bytes} bytes)"
    )]
    Http {
        api: String,
        status: u16,
        bytes: usize,
    },
    /// A 200 answer whose body is not the documented envelope.
    #[error("Tencent IM {api}: unreadable answer: {message}")]
    Decode { api: String, message: String },
    /// The API answered `ActionStatus: FAIL` / a non-zero `ErrorCode`.
    #[error("Tencent IM {api} error {code}: {} (server said: {info})", explain(*.code))]
    Api {
        api: String,
        code: i64,
        info: String,
    },
    /// The UserSig could not be produced.
    #[error("Tencent IM UserSig: {0}")]
    UserSig(#[from] UserSigError),
}

impl TencentError {
    /// The Tencent `ErrorCode`, when the server gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            TencentError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            TencentError::Api { code, .. } => classify(*code),
            TencentError::Transport { .. } => ErrorClass::Retryable,
            TencentError::Http { status, .. } => match status {
                429 => ErrorClass::RateLimited,
                408 | 500 | 502 | 503 | 504 => ErrorClass::Retryable,
                401 | 403 => ErrorClass::Auth,
                _ => ErrorClass::Permanent,
            },
            // A half-read or garbled body is usually a proxy hiccup.
            TencentError::Decode { .. } => ErrorClass::Retryable,
            // A person must change the base URL.
            TencentError::Config(_)
            | TencentError::UserSig(_)
            | TencentError::Blocked { .. }
            | TencentError::Redirect { .. } => ErrorClass::Auth,
            TencentError::Invalid { .. } | TencentError::TooLarge { .. } => ErrorClass::Permanent,
        }
    }
}

impl TencentError {
    /// Test connection's words: it sends one request and nothing sends it again.
    pub fn for_test_connection(&self) -> String {
        let next = match self.class() {
            ErrorClass::RateLimited => {
                " Nothing was retried: this API's quota is shared with any import running on these keys; press Test connection again in a few seconds."
            }
            ErrorClass::Retryable => {
                " Nothing was retried: this is usually transient; press Test connection again in a moment, and if it keeps failing, check the target's status."
            }
            _ => "",
        };
        format!("{self}{next}")
    }
}

/// Retry class of a Tencent `ErrorCode` (spec §1.6). 70001/70052 are `Auth`: the client
/// already regenerates the UserSig once and retries, so a caller seeing them must look at
/// the clock or the key.
pub fn classify(code: i64) -> ErrorClass {
    match code {
        0 => ErrorClass::Ok,
        60007 | 60011 | 60018 | 60019 | 10006 | 10023 | 70050 | 30540 => ErrorClass::RateLimited,
        60008 | 60013 | 60014 | 10002 | 20004 | 20005 | 30006 | 30007 | 30008 | 40006 | 50004
        | 50005 | 70169 | 70202 | 70500 | 90992 | 90994 | 90995 | 91000 => ErrorClass::Retryable,
        60004 | 60005 | 60006 | 60010 | 60016 | 60017 | 60020 | 60021 | 70001 | 70002 | 70003
        | 70005 | 70009 | 70013 | 70014 | 70016 | 70020 | 70051 | 70052 | 70403 | 20002 | 90009
        | 10008 | 30002 | 30004 | 40004 => ErrorClass::Auth,
        _ => ErrorClass::Permanent,
    }
}

/// A sentence a person can act on for a Tencent `ErrorCode`.
pub fn explain(code: i64) -> &'static str {
    match code {
        0 => "Success.",
        60002 => "The request URL could not be parsed (missing or malformed query parameters): this is an imshift bug, report it.",
        60003 => "The request body is not valid JSON: this is an imshift bug, report it.",
        60004 | 60005 => "The admin account or its UserSig in the request is wrong: check the admin identifier and secret key in the connection settings.",
        60006 => "The SDKAppID is not valid: copy it again from the console (Application → Basic config).",
        60007 => "Too many REST calls per second for this API (its quota is used up): raise the API frequency limit in the console to go faster.",
        60008 => "Tencent IM timed out serving the request (a transient error on its side).",
        60009 => "The API path does not exist on this server: check the region domain, or this is an imshift bug.",
        60010 => "The admin identifier is not an app admin: add it under App admins in the console (Application → Basic config), or enter an existing admin such as `administrator`.",
        60011 => "This SDKAppID is sending too many requests per second overall: lower the concurrency or raise the limit in the console.",
        60012 => "The request URL has no sdkappid: this is an imshift bug, report it.",
        60013 => "Tencent IM returned an unreadable answer (a transient error on its side); if it persists, contact Tencent support.",
        60014 => "Tencent IM timed out exchanging the account (a transient error on its side).",
        60015 => "An account id in the body is not a string: this is an imshift bug, report it.",
        60016 | 60017 => "This SDKAppID or its REST access is disabled: re-enable the application in the console.",
        60018 | 60019 => "Requests are too frequent: lower the concurrency if it keeps happening.",
        60020 => "The Pro/Ultimate package of this app has expired: renew it in the console before importing.",
        60021 => "The console's IP is not in the app's IP allow-list: add imshift's outgoing IP under the REST API IP allow-list in the console, or remove the allow-list.",
        70001 | 70052 => "The UserSig has expired: check this machine's clock (it must be within a few minutes of real time); imshift regenerates the UserSig automatically.",
        70002 => "The UserSig is empty: check the secret key in the connection settings.",
        70003 | 70005 => "The UserSig cannot be parsed: check that the secret key is the HMAC (new-style) key from the console, not an old ECDSA private key.",
        70009 => "The secret key does not match this SDKAppID: copy the key again from the console (Application → Basic config).",
        70013 => "The UserSig was made for a different admin identifier than the one in the request: this is an imshift bug, report it.",
        70014 => "The UserSig was made for a different SDKAppID than the one in the request: check the SDKAppID in the connection settings.",
        70016 | 70020 => "This SDKAppID is not known in this region: pick the region (data centre) where the app was created, and check the SDKAppID.",
        70050 => "Too many failed signature checks: wait one minute, fix the secret key, then try again.",
        70051 => "This account has been blacklisted by Tencent IM: contact Tencent support.",
        70107 => "The account has not been imported: import the account first, then retry the step that needs it.",
        70169 | 70202 | 70500 => "Tencent IM had an internal error (a transient error on its side).",
        70206 => "The batch holds an invalid number of accounts: this is an imshift bug, report it.",
        70398 => "The app has reached its edition's account limit (Free edition: 100 accounts): upgrade the edition in the console.",
        70402 => "A parameter is invalid (often an account id that is too long or not printable ASCII): see the failed record.",
        70403 => "This operation needs an app admin: use an admin identifier listed in the console.",
        10002 => "Tencent IM had an internal group error (a transient error on its side).",
        10003 => "The group command is not valid: this is an imshift bug, report it.",
        10004 => "A group request parameter is invalid (for example a time outside the group's life, or a wrong field): see the failed record.",
        10005 => "Too many accounts in one group request: lower the batch size in the Tencent IM limits (import_group_member is 20 today).",
        10006 => "Group operations are too frequent (the quota is used up).",
        10007 => "The operation is not allowed for this group type (AVChatRoom groups cannot be imported) or the operator lacks permission: see the group record.",
        10008 => "The group request signature is invalid: check the admin identifier and secret key.",
        10010 => "The group does not exist or was dismissed: import the group first.",
        10011 => "The group request JSON could not be parsed: this is an imshift bug, report it.",
        10012 => "The operator account id is invalid: check the admin identifier.",
        10013 => "The account is already a member of the group: nothing to do.",
        10014 => "The group is full: raise MaxMemberCount or the edition's member limit.",
        10015 => "The group id is invalid for Tencent IM (at most 48 bytes of printable ASCII, not starting with @TGS#): map it to a new id.",
        10016 => "A before-callback of your app rejected the group operation: check your callback server.",
        10017 => "The sender is muted in this group.",
        10019 => "The account does not exist in Tencent IM: import the account before adding it to groups.",
        10021 => "The group id is already used: the group was imported before (skip it) or another group has this id.",
        10023 => "Group messages are sent too fast (the quota is used up).",
        10025 => "The group id is already used by a group you own: skip it, it was imported before.",
        10037 => "The user has joined too many groups for the edition: upgrade the edition or drop some memberships.",
        10038 => "The group member count exceeds the package limit: upgrade the edition.",
        20001 => "The message packet is invalid: this is an imshift bug, report it.",
        20002 => "The UserSig is invalid for messaging: check the secret key.",
        20003 => "The sender or recipient account does not exist: import both accounts before their messages.",
        20004 | 20005 => "Tencent IM had a messaging error (a transient error on its side).",
        20006 => "A before-send callback of your app blocked the message: check your callback server.",
        20007 => "The sender is on the recipient's blocklist, so the message was refused.",
        20012 => "The sender is muted.",
        30001 => "A friend request parameter is invalid, or the friendship already exists: see the failed record.",
        30003 => "The account does not exist: import accounts before friends and blocklists.",
        30008 => "Two writes to the same user's friend list collided (imshift writes one user's list one request at a time; something else wrote it too).",
        30010 => "The user's friend list is full.",
        30540 => "Friend operations are too frequent (the quota is used up).",
        40001 => "A profile parameter is invalid: see the failed record.",
        40003 => "The account does not exist: import the account before its profile.",
        40006 => "Tencent IM had a profile error (a transient error on its side).",
        40009 => "A custom profile field is not registered: add the Tag_Profile_Custom_ field in the console (Feature config → User custom fields) and wait 10 minutes.",
        40601 => "A profile value is longer than 500 bytes: shorten it in the mapping.",
        80001 => "Tencent IM's content filter refused the text: review the message or the app's keyword settings.",
        80002 | 10020 => "The message is larger than 8 KB: it cannot be imported as is.",
        90001 => "The message JSON could not be parsed: this is an imshift bug, report it.",
        90002 | 90007 => "MsgBody is not a JSON array of message elements: this is an imshift bug, report it.",
        90003 => "The recipient account is missing or does not exist: import it first.",
        90008 => "The sender account is missing or does not exist: import it first.",
        90009 => "This message API needs an app admin: use an admin identifier listed in the console.",
        90010 => "A message element is malformed: see the failed record.",
        90012 => "The recipient account is not registered: import it before its messages.",
        90026 => "MsgLifeTime exceeds 7 days: this is an imshift bug, report it.",
        90030 => "SyncFromOldSystem must be 2 (history) or 5 (live cut-over): this is an imshift bug, report it.",
        90048 => "The account does not exist: import the sender and recipient before their messages.",
        90992 | 90994 | 90995 | 91000 => "Tencent IM had an internal messaging error (a transient error on its side); if every call fails and callbacks are on, check that your callback server answers.",
        93000 => "The message JSON is larger than 8 KB: it cannot be imported as is.",
        _ => "Unlisted Tencent IM error: look the code up in Tencent's error code list.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_spec() {
        assert_eq!(classify(0), ErrorClass::Ok);
        for c in [60007, 60011, 60018, 60019, 10006, 10023, 70050] {
            assert_eq!(classify(c), ErrorClass::RateLimited, "{c}");
        }
        for c in [10002, 20004, 20005, 70500, 90992, 30008, 60008] {
            assert_eq!(classify(c), ErrorClass::Retryable, "{c}");
        }
        for c in [70001, 70009, 70013, 70014, 70020, 60010, 60021] {
            assert_eq!(classify(c), ErrorClass::Auth, "{c}");
        }
        for c in [
            10004, 10007, 10010, 10015, 10019, 10021, 20003, 90048, 60003, 12345,
        ] {
            assert_eq!(classify(c), ErrorClass::Permanent, "{c}");
        }
        assert!(classify(60007).is_retryable());
        assert!(!classify(10021).is_retryable());
    }

    #[test]
    fn every_listed_code_has_its_own_sentence() {
        let unknown = explain(1);
        for c in [
            60002, 60003, 60004, 60005, 60006, 60007, 60010, 60011, 60018, 60019, 60020, 60021,
            70001, 70003, 70009, 70013, 70014, 70016, 70020, 70050, 70052, 70107, 90012, 90048,
            20003, 10004, 10005, 10006, 10007, 10010, 10015, 10019, 10021, 30003, 30008, 40003,
            40009, 40601, 80001, 80002, 93000,
        ] {
            assert_ne!(explain(c), unknown, "{c} has no sentence");
        }
        assert!(explain(70009).contains("secret key"));
        assert!(explain(60010).starts_with("The admin identifier is not an app admin"));
        assert!(explain(60021).starts_with("The console's IP is not in the app's IP allow-list"));
        assert!(explain(70016).contains("region"));
    }

    #[test]
    fn no_sentence_promises_what_its_caller_may_not_do() {
        // An import gives up after its attempts and Test connection sends once: the words
        // of a code must not promise a retry or a wait that may not happen.
        for c in 0..100_000 {
            let s = explain(c).to_lowercase();
            for promise in ["will be retried", "retries", "waits and", "slows down"] {
                assert!(!s.contains(promise), "{c}: {s}");
            }
        }
        let e = TencentError::Api {
            api: "im_open_login_svc/account_check".into(),
            code: 70500,
            info: "injected fault".into(),
        };
        let s = e.for_test_connection();
        assert!(
            s.contains("70500") && s.contains("Nothing was retried"),
            "{s}"
        );
        let e = TencentError::Api {
            api: "im_open_login_svc/account_check".into(),
            code: 70009,
            info: "sig".into(),
        };
        assert!(!e.for_test_connection().contains("retried"));
    }

    #[test]
    fn display_has_code_and_sentence() {
        let e = TencentError::Api {
            api: "openim/importmsg".into(),
            code: 70009,
            info: "sig check failed".into(),
        };
        let s = e.to_string();
        assert!(s.contains("70009") && s.contains("secret key") && s.contains("openim/importmsg"));
        assert_eq!(e.class(), ErrorClass::Auth);
    }
}
