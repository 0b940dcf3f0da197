//! Signing in: the email's length checked before the database, the attempt reserved before the
//! password is checked, failures audited once per window, and a same-site `next` only.

use super::backend::{Backend, Credentials};
use super::throttle::{self, Failure};
use super::User;
use crate::audit::{self, Who};
use crate::service::{AppError, AppResult, Config};
use axum_login::AuthnBackend;
use serde_json::json;
use sqlx::PgPool;

/// RFC 5321 allows 64 + 1 + 255 characters; anything longer is not an email.
pub const MAX_EMAIL_LEN: usize = 320;

/// Checks the credentials of one sign-in, throttled and audited. The caller opens the session.
pub async fn sign_in(
    pool: &PgPool,
    config: &Config,
    email: &str,
    password: String,
    ip: Option<&str>,
) -> AppResult<User> {
    let email = email.trim();
    // Before any query: an over-long email is no account, and must not reach an index.
    if email.chars().count() > MAX_EMAIL_LEN || email.is_empty() {
        return Err(AppError::validation(
            "email",
            format!("give an email address of 1 to {MAX_EMAIL_LEN} characters"),
        ));
    }
    if password.len() > 1024 {
        return Err(AppError::validation(
            "password",
            "passwords are at most 1024 bytes",
        ));
    }
    let reservation = match throttle::reserve(pool, config, email, ip).await {
        Ok(r) => r,
        Err(e) => {
            throttle::report_failure(pool, config, email, ip, Failure::Throttled).await?;
            return Err(e);
        }
    };
    let user = Backend::new(pool.clone())
        .authenticate(Credentials {
            email: email.to_string(),
            password,
        })
        .await
        .map_err(AppError::internal)?;
    let Some(user) = user else {
        throttle::report_failure(pool, config, email, ip, Failure::WrongPassword).await?;
        return Err(AppError::BadCredentials);
    };
    throttle::succeeded(pool, &reservation).await?;
    let failed_before = throttle::take_unreported(pool, email, ip).await?;
    let details = if failed_before > 0 {
        json!({ "failed_attempts_before": failed_before })
    } else {
        json!({})
    };
    audit::record(
        pool,
        &Who::user(user.id, &user.email, ip.map(str::to_string)),
        "auth.login",
        &user.email,
        details,
    )
    .await?;
    Ok(user)
}

/// Where to go after signing in: `next` when it is a path on this site, else `/`. A path
/// starts with one `/`, holds no backslash and no control character (browsers drop tabs and
/// newlines, so `/\t/evil.example` would become `//evil.example`). Other non-ASCII characters
/// are percent-encoded so the answer's Location header is always valid.
pub fn safe_next(next: &str) -> String {
    let same_site = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2048
        && !next.chars().any(|c| c == '\\' || c.is_control());
    if !same_site {
        return "/".into();
    }
    let mut out = String::with_capacity(next.len());
    for c in next.chars() {
        if c.is_ascii_graphic() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        for ok in ["/", "/migrations/1?tab=keys", "/a/b#c"] {
            assert_eq!(safe_next(ok), ok);
        }
        assert_eq!(safe_next("/caf\u{e9} x"), "/caf%C3%A9%20x");
        for bad in [
            "/\t/evil.example",
            "/\n",
            "/a\r\nSet-Cookie: x=1",
            "//evil",
            "/\\evil",
            "/a\\b",
            "https://evil",
            "evil",
            "",
            "/\u{7f}",
            "/\u{85}x",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }
}
