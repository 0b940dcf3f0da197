//! Team accounts: who may do what. Users, sessions, invites, personal API tokens, login
//! throttling and the cross-site request check.

pub mod actor;
pub mod backend;
pub mod csrf;
pub mod invites;
pub mod secret;
pub mod signin;
pub mod throttle;
pub mod tokens;
pub mod users;

pub use actor::Actor;
pub use backend::{AuthSession, Backend, Credentials, User};

/// Shortest password accepted. Long passphrases beat complexity rules.
pub const MIN_PASSWORD_LEN: usize = 10;

pub fn validate_email(email: &str) -> Result<String, crate::service::AppError> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email.to_string())
    } else {
        Err(crate::service::AppError::validation(
            "email",
            format!("`{email}` is not an email address (expected name@example.com)"),
        ))
    }
}

pub fn validate_password(password: &str) -> Result<(), crate::service::AppError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(crate::service::AppError::validation(
            "password",
            format!("use at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > 1024 {
        return Err(crate::service::AppError::validation(
            "password",
            "use at most 1024 bytes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_trimmed() {
        assert_eq!(validate_email(" a@b.io ").unwrap(), "a@b.io");
        for bad in ["", "a", "a@b", "@b.io", "a b@c.io", "a@.io", "a@io."] {
            assert!(validate_email(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough pass").is_ok());
    }
}
