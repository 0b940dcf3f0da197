//! Who is making this request: a signed-in user (session cookie) or a personal API token.

use super::{tokens, AuthSession, User};
use crate::model::{Permission, Role};
use crate::web::{AppError, AppState};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use sqlx::types::ipnetwork::IpNetwork;
use sqlx::PgPool;
use std::net::{IpAddr, SocketAddr};
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    /// Set when the request came with an API token rather than a session.
    pub token_id: Option<Uuid>,
    pub ip: Option<String>,
}

impl Actor {
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "Your role ({}) cannot do this: {}.",
                self.role.label(),
                match permission {
                    Permission::Read => "read",
                    Permission::RunMigrations => "it needs the operator role or higher",
                    Permission::ManageCredentials | Permission::ManageTeam =>
                        "it needs the admin or owner role",
                }
            )))
        }
    }

    /// The same caller as the database sees it now, for long-lived answers (the progress
    /// stream) that must stop when the member is removed or the token revoked.
    pub async fn refresh(&self, pool: &PgPool) -> Result<Actor, AppError> {
        let user: Option<User> = match self.token_id {
            Some(token) => {
                sqlx::query_as(
                    "SELECT u.id, u.email, u.role, u.password_hash
                 FROM api_tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.id = $1 AND t.revoked_at IS NULL",
                )
                .bind(token)
                .fetch_optional(pool)
                .await?
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT {} FROM users WHERE id = $1",
                    super::backend::USER_COLUMNS
                ))
                .bind(self.user_id)
                .fetch_optional(pool)
                .await?
            }
        };
        let user = user.ok_or(AppError::Unauthorized)?;
        Ok(Actor {
            user_id: user.id,
            email: user.email,
            role: user.role,
            token_id: self.token_id,
            ip: self.ip.clone(),
        })
    }
}

/// The client's address: the socket's peer, or, when that peer is a trusted proxy
/// (IMSHIFT_TRUSTED_PROXIES), the right-most address in `Forwarded` / `X-Forwarded-For` that
/// is not itself a trusted proxy. Addresses left of it could be written by anyone.
pub fn client_ip(parts: &Parts) -> Option<String> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())?;
    let trusted = parts
        .extensions
        .get::<AppState>()
        .map(|s| s.config.trusted_proxies.as_slice())
        .unwrap_or_default();
    Some(resolve_client(peer, &parts.headers, trusted))
}

fn is_trusted(ip: IpAddr, trusted: &[IpNetwork]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    trusted.iter().any(|n| n.contains(ip))
}

/// The client address for a request from `peer` with these headers.
pub fn resolve_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNetwork]) -> String {
    if !is_trusted(peer, trusted) {
        return peer.to_string();
    }
    let hops = forwarded_hops(headers);
    let mut client = peer.to_string();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip, trusted) => client = ip.to_string(),
            Ok(ip) => return ip.to_string(),
            // A trusted proxy wrote something that is not an address ("unknown"): it is
            // still the best name we have for the client.
            Err(_) => return hop.clone(),
        }
    }
    client
}

/// The addresses a request went through, left (the original client) to right (the last
/// proxy's peer). `Forwarded` (RFC 7239) wins over `X-Forwarded-For` when both are present.
pub fn forwarded_hops(headers: &HeaderMap) -> Vec<String> {
    let forwarded: Vec<String> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| strip_node(v.trim().trim_matches('"')))
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| strip_node(v.trim()))
        .filter(|v| !v.is_empty())
        .collect()
}

/// `[2001:db8::1]:4711` → `2001:db8::1`, `192.0.2.1:80` → `192.0.2.1`.
fn strip_node(node: &str) -> String {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    match node.split_once(':') {
        // One colon: IPv4 with a port. More: a bare IPv6 address.
        Some((host, port)) if !port.contains(':') => host.to_string(),
        _ => node.to_string(),
    }
}

pub fn app_state(parts: &Parts) -> Result<AppState, AppError> {
    parts
        .extensions
        .get::<AppState>()
        .cloned()
        .ok_or_else(|| AppError::Internal("AppState missing from request extensions".into()))
}

/// A token the cross-site check already looked up, so the request does not look it up twice.
#[derive(Clone)]
pub struct VerifiedToken {
    pub user: User,
    pub token_id: Uuid,
}

/// The bearer secret of a request, if it names one.
pub fn bearer(headers: &HeaderMap) -> Option<Result<&str, AppError>> {
    headers.get(AUTHORIZATION).map(|value| {
        value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(AppError::Unauthorized)
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let app = app_state(parts)?;
        let ip = client_ip(parts);
        // A request that names a token is judged by the token alone, never by a cookie too.
        if let Some(secret) = bearer(&parts.headers) {
            let verified = match parts.extensions.get::<VerifiedToken>() {
                Some(v) => v.clone(),
                None => {
                    let (user, token_id) = tokens::authenticate(&app.pool, secret?)
                        .await?
                        .ok_or(AppError::Unauthorized)?;
                    VerifiedToken { user, token_id }
                }
            };
            return Ok(Actor {
                user_id: verified.user.id,
                email: verified.user.email,
                role: verified.user.role,
                token_id: Some(verified.token_id),
                ip,
            });
        }
        let session = AuthSession::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::Internal("auth layer missing".into()))?;
        let user = session.user.ok_or(AppError::Unauthorized)?;
        Ok(Actor {
            user_id: user.id,
            email: user.email,
            role: user.role,
            token_id: None,
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNetwork> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn headers(list: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let lb: IpAddr = "10.0.0.5".parse().unwrap();
        let xff = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7")]);
        // Nobody trusted: the header is the client's own words.
        assert_eq!(resolve_client(lb, &xff, &[]), "10.0.0.5");
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(resolve_client(lb, &xff, &trusted), "203.0.113.7");
        // A client cannot pose as a proxy by prepending: the right-most untrusted wins.
        let chained = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(resolve_client(lb, &chained, &trusted), "203.0.113.7");
        // A peer outside the list is the client even with the header.
        let outside: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(resolve_client(outside, &xff, &trusted), "198.51.100.1");
        // No header behind the proxy: the proxy is all we know.
        assert_eq!(resolve_client(lb, &HeaderMap::new(), &trusted), "10.0.0.5");
    }

    #[test]
    fn the_forwarded_header_is_read_with_ports_and_ipv6() {
        let lb: IpAddr = "127.0.0.1".parse().unwrap();
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http;by=203.0.113.43, for=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(resolve_client(lb, &h, &trusted), "2001:db8:cafe::17");
        let h = headers(&[
            ("forwarded", "for=192.0.2.60:8080"),
            ("x-forwarded-for", "6.6.6.6"),
        ]);
        assert_eq!(resolve_client(lb, &h, &trusted), "192.0.2.60");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "192.0.2.1")]);
        assert_eq!(resolve_client(mapped, &h, &trusted), "192.0.2.1");
    }
}
