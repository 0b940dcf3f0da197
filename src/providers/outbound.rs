//! Outbound HTTP to provider APIs, guarded so that a custom base URL cannot reach into the
//! operator's network:
//! - a target URL is checked in the URL parser's canonical form (no userinfo, no odd host
//!   spellings such as `2130706433` or `0x7f.1`; plain http only to this machine);
//! - host names are resolved by [`GuardedResolver`], which drops refused addresses from the DNS
//!   answer before reqwest connects, so the address checked is the address connected to;
//! - clients follow no redirects and use no proxy (a proxy would resolve names itself);
//! - answers are read in chunks up to [`MAX_ANSWER_BYTES`].
//!
//! Exceptions: sandboxes this process started ([`register_sandbox`]) and the operator setting
//! `IMSHIFT_ALLOW_PRIVATE_TARGETS=1`, which admits private, CGNAT, unique-local and loopback
//! addresses over https (never link-local, multicast, unspecified or reserved ones).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The largest provider answer read; the providers' biggest documented answers (message pages)
/// are well under 1 MB.
pub const MAX_ANSWER_BYTES: usize = 8 << 20;

/// The operator setting that admits private targets over https.
pub const ALLOW_PRIVATE_ENV: &str = "IMSHIFT_ALLOW_PRIVATE_TARGETS";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    /// Plain http: this machine only (sandboxes, local test servers).
    Http,
}

/// What the operator admits beyond public addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub allow_private: bool,
}

impl Policy {
    /// `IMSHIFT_ALLOW_PRIVATE_TARGETS`, read once per process (`1`, `true`, `yes` or `on`).
    pub fn from_env() -> Self {
        static ALLOW: OnceLock<bool> = OnceLock::new();
        let allow_private = *ALLOW.get_or_init(|| {
            let v = std::env::var(ALLOW_PRIVATE_ENV).unwrap_or_default();
            let on = matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            );
            if on {
                tracing::warn!(
                    "{ALLOW_PRIVATE_ENV} is set: provider targets may be private addresses"
                );
            }
            on
        });
        Policy { allow_private }
    }
}

/// A refused target or address; the text says what and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

// ---- sandboxes this process started ----

static SANDBOXES: Mutex<BTreeSet<SocketAddr>> = Mutex::new(BTreeSet::new());

/// Admit `addr` as a target: a sandbox this process started and listens on.
pub fn register_sandbox(addr: SocketAddr) {
    SANDBOXES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(addr);
}

/// Stop admitting `addr` (its sandbox stopped).
pub fn forget_sandbox(addr: SocketAddr) {
    SANDBOXES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&addr);
}

fn is_sandbox(addr: SocketAddr) -> bool {
    SANDBOXES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&addr)
}

// ---- addresses ----

/// Where an address points, as far as reaching it from this console goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Public,
    Loopback,
    /// RFC 1918, CGNAT, IPv6 unique-local and the like: the operator's own network.
    Private,
    /// Link-local, including the cloud metadata address 169.254.169.254.
    LinkLocal,
    /// Unspecified, multicast, broadcast, documentation and other reserved ranges.
    Unusable,
}

/// The class of `ip` and the range it falls in, in words.
pub fn reach(ip: IpAddr) -> (Reach, &'static str) {
    match ip {
        IpAddr::V4(v4) => reach_v4(v4),
        IpAddr::V6(v6) => reach_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn reach_v4(ip: Ipv4Addr) -> (Reach, &'static str) {
    use Reach::*;
    const TABLE: &[([u8; 4], u32, Reach, &str)] = &[
        (
            [0, 0, 0, 0],
            8,
            Unusable,
            "an unspecified address (0.0.0.0/8)",
        ),
        ([10, 0, 0, 0], 8, Private, "a private address (10.0.0.0/8)"),
        (
            [100, 64, 0, 0],
            10,
            Private,
            "a carrier-grade NAT address (100.64.0.0/10)",
        ),
        (
            [127, 0, 0, 0],
            8,
            Loopback,
            "a loopback address (127.0.0.0/8)",
        ),
        (
            [169, 254, 0, 0],
            16,
            LinkLocal,
            "a link-local address (169.254.0.0/16, where cloud metadata services live)",
        ),
        (
            [172, 16, 0, 0],
            12,
            Private,
            "a private address (172.16.0.0/12)",
        ),
        (
            [192, 0, 0, 0],
            24,
            Unusable,
            "a reserved address (192.0.0.0/24)",
        ),
        (
            [192, 0, 2, 0],
            24,
            Unusable,
            "a documentation address (192.0.2.0/24)",
        ),
        (
            [192, 88, 99, 0],
            24,
            Unusable,
            "a reserved address (192.88.99.0/24)",
        ),
        (
            [192, 168, 0, 0],
            16,
            Private,
            "a private address (192.168.0.0/16)",
        ),
        (
            [198, 18, 0, 0],
            15,
            Private,
            "a benchmarking address (198.18.0.0/15)",
        ),
        (
            [198, 51, 100, 0],
            24,
            Unusable,
            "a documentation address (198.51.100.0/24)",
        ),
        (
            [203, 0, 113, 0],
            24,
            Unusable,
            "a documentation address (203.0.113.0/24)",
        ),
        (
            [224, 0, 0, 0],
            4,
            Unusable,
            "a multicast address (224.0.0.0/4)",
        ),
        (
            [240, 0, 0, 0],
            4,
            Unusable,
            "a reserved or broadcast address (240.0.0.0/4)",
        ),
    ];
    TABLE
        .iter()
        .find(|(net, prefix, _, _)| in_v4(ip, *net, *prefix))
        .map(|&(_, _, r, why)| (r, why))
        .unwrap_or((Public, "a public address"))
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn reach_v6(ip: Ipv6Addr) -> (Reach, &'static str) {
    use Reach::*;
    if ip.is_unspecified() {
        return (Unusable, "the unspecified address (::)");
    }
    if ip.is_loopback() {
        return (Loopback, "the loopback address (::1)");
    }
    // IPv4 inside IPv6 is judged as the IPv4 address it reaches.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return reach_v4(v4);
    }
    let embedded = |bits: u128| Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return reach_v4(embedded(u128::from(ip)));
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return reach_v4(embedded(u128::from(ip) >> 80));
    }
    const TABLE: &[([u16; 8], u32, Reach, &str)] = &[
        (
            [0, 0, 0, 0, 0, 0, 0, 0],
            8,
            Unusable,
            "a reserved IPv6 address (::/8)",
        ),
        (
            [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
            48,
            Private,
            "a local-use NAT64 address (64:ff9b:1::/48)",
        ),
        (
            [0x100, 0, 0, 0, 0, 0, 0, 0],
            64,
            Unusable,
            "a discard-only IPv6 address (100::/64)",
        ),
        (
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
            32,
            Unusable,
            "a documentation IPv6 address (2001:db8::/32)",
        ),
        (
            [0x2001, 0, 0, 0, 0, 0, 0, 0],
            23,
            Unusable,
            "a reserved IPv6 address (2001::/23, Teredo and protocol assignments)",
        ),
        (
            [0xfc00, 0, 0, 0, 0, 0, 0, 0],
            7,
            Private,
            "an IPv6 unique-local address (fc00::/7)",
        ),
        (
            [0xfe80, 0, 0, 0, 0, 0, 0, 0],
            10,
            LinkLocal,
            "an IPv6 link-local address (fe80::/10)",
        ),
        (
            [0xfec0, 0, 0, 0, 0, 0, 0, 0],
            10,
            Private,
            "an IPv6 site-local address (fec0::/10)",
        ),
        (
            [0xff00, 0, 0, 0, 0, 0, 0, 0],
            8,
            Unusable,
            "an IPv6 multicast address (ff00::/8)",
        ),
    ];
    TABLE
        .iter()
        .find(|(net, prefix, _, _)| in_v6(ip, *net, *prefix))
        .map(|&(_, _, r, why)| (r, why))
        .unwrap_or((Public, "a public address"))
}

/// May a target of `scheme` connect to `addr`?
pub fn check_addr(scheme: Scheme, addr: SocketAddr, policy: Policy) -> Result<(), Refused> {
    if is_sandbox(addr) {
        return Ok(());
    }
    let ip = addr.ip();
    let (reach, why) = reach(ip);
    match (scheme, reach) {
        (Scheme::Http, Reach::Loopback) => Ok(()),
        (Scheme::Http, _) => Err(Refused(format!(
            "{ip} is {why}; plain http reaches only this machine (127.0.0.1, [::1])"
        ))),
        (Scheme::Https, Reach::Public) => Ok(()),
        (Scheme::Https, Reach::Private | Reach::Loopback) if policy.allow_private => Ok(()),
        (Scheme::Https, Reach::Private | Reach::Loopback) => Err(Refused(format!(
            "{ip} is {why}, inside the operator's network; provider targets must be public \
             addresses (set {ALLOW_PRIVATE_ENV}=1 if the provider is reached through a gateway on \
             your network)"
        ))),
        (Scheme::Https, Reach::LinkLocal | Reach::Unusable) => Err(Refused(format!(
            "{ip} is {why}; provider targets must be public addresses"
        ))),
    }
}

// ---- URLs ----

/// A base URL that passed [`check_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The canonical URL without a trailing slash.
    pub url: String,
    pub scheme: Scheme,
    /// The canonical host (`[..]` around IPv6).
    pub host: String,
    pub port: u16,
    /// The address when the host is an IP literal (reqwest connects to it without resolving).
    pub ip: Option<IpAddr>,
}

/// The authority as the person typed it: between `://` and the first `/`, `\`, `?` or `#`.
fn typed_authority(raw: &str) -> &str {
    let rest = raw.split_once("://").map_or(raw, |(_, r)| r);
    rest.split(['/', '\\', '?', '#']).next().unwrap_or("")
}

/// The host as the person typed it: the authority without the port.
fn typed_host(raw: &str) -> &str {
    let authority = typed_authority(raw);
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// Check a provider base URL and return its canonical form.
pub fn check_url(raw: &str, policy: Policy) -> Result<Target, Refused> {
    let raw = raw.trim();
    // The URL parser drops tabs and newlines and decodes %-escapes in hosts; such input is
    // never a real base URL.
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Refused(format!(
            "base URL {raw:?} contains spaces or control characters"
        )));
    }
    let url = reqwest::Url::parse(raw)
        .map_err(|e| Refused(format!("base URL {raw:?} is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() || typed_authority(raw).contains('@')
    {
        return Err(Refused(
            "the base URL must not contain a user name or password (user:password@host); \
             the provider is authenticated by the connection's keys"
                .into(),
        ));
    }
    let scheme = match url.scheme() {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        other => {
            return Err(Refused(format!(
                "base URL {raw:?} has scheme {other:?}; expected https"
            )))
        }
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Err(Refused(format!("base URL {raw:?} has no host")));
    };
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Refused(format!(
            "base URL {raw:?} must be a scheme and host (optionally a path), without query or \
             fragment"
        )));
    }
    let ip: Option<IpAddr> = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok();
    // The parser reads `2130706433`, `0x7f.1`, `127.1` and `%31%32%37...` as 127.0.0.1. Such
    // spellings only serve to slip past a reader, so the host must be written as the parser
    // writes it (names in any case; non-ASCII names are converted to punycode and allowed).
    let typed = typed_host(raw).to_ascii_lowercase();
    let idn = ip.is_none() && !typed.is_ascii();
    if typed != host && !idn {
        return Err(Refused(format!(
            "base URL {raw:?}: write the host as {host} (numeric, octal, hexadecimal, shortened \
             or %-encoded spellings are refused)"
        )));
    }
    if scheme == Scheme::Http {
        // Exactly the loopback spellings the sandbox uses. 127.0.0.2 and the rest of 127/8
        // are loopback too, but local resolvers and services bind there (127.0.0.53,
        // 127.0.0.11), nothing of ours does, and a short fixed list is what an operator can
        // read in the audit log at a glance. `localhost` is resolved and must answer loopback.
        if !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            return Err(Refused(format!(
                "base URL {raw:?} uses plain http; use https (plain http is allowed only for \
                 localhost, 127.0.0.1 or [::1], e.g. the sandbox)"
            )));
        }
    }
    if let Some(ip) = ip {
        check_addr(scheme, SocketAddr::new(ip, port), policy)
            .map_err(|r| Refused(format!("base URL {raw:?} is refused: {r}")))?;
    }
    Ok(Target {
        url: url.as_str().trim_end_matches('/').to_string(),
        scheme,
        host: host.to_string(),
        port,
        ip,
    })
}

// ---- resolving and connecting ----

/// Resolves the one host of a [`Target`] and keeps only the addresses it may connect to; with
/// none left the connection fails before any packet is sent to the host.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    scheme: Scheme,
    port: u16,
    policy: Policy,
}

impl GuardedResolver {
    pub fn new(target: &Target, policy: Policy) -> Self {
        GuardedResolver {
            scheme: target.scheme,
            port: target.port,
            policy,
        }
    }

    /// The answers that may be used, or why none may.
    pub fn filter(&self, name: &str, answers: &[SocketAddr]) -> Result<Vec<SocketAddr>, Refused> {
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = answers
            .iter()
            .map(|a| SocketAddr::new(a.ip(), self.port))
            .filter(|a| match check_addr(self.scheme, *a, self.policy) {
                Ok(()) => true,
                Err(r) => {
                    first_refusal.get_or_insert(r);
                    false
                }
            })
            .collect();
        if !allowed.is_empty() {
            return Ok(allowed);
        }
        let list: Vec<String> = answers.iter().map(|a| a.ip().to_string()).collect();
        Err(match first_refusal {
            Some(r) => Refused(format!("{name} resolved to {}: {r}", list.join(", "))),
            None => Refused(format!("{name} has no address")),
        })
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = *self;
        let name = name.as_str().to_string();
        Box::pin(async move {
            let answers: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), this.port))
                .await?
                .collect();
            let allowed = this.filter(&name, &answers)?;
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// A client for one target: guarded resolver, no redirects, no proxy.
pub fn client(
    target: &Target,
    policy: Policy,
    timeout: Duration,
    connect_timeout: Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(GuardedResolver::new(target, policy))
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .build()
}

/// The guard's refusal inside a reqwest error, if that is why it failed.
pub fn refusal<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

/// An error and its causes in one line (reqwest's top line alone says little).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![];
    let mut cur = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

// ---- reading answers ----

#[derive(Debug)]
pub enum BodyError {
    /// More than `limit` bytes (declared in Content-Length, or seen while reading).
    TooLarge {
        limit: usize,
    },
    Transport(reqwest::Error),
}

/// Read an answer's body in chunks, refusing it once it passes `limit` bytes; at most `limit`
/// bytes plus one chunk are ever held.
pub async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::with_capacity(declared.map_or(8 << 10, |n| n as usize));
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Policy = Policy {
        allow_private: false,
    };
    const OPEN: Policy = Policy {
        allow_private: true,
    };

    fn refused(raw: &str) -> String {
        check_url(raw, STRICT).unwrap_err().0
    }

    #[test]
    fn classes_of_addresses() {
        let cases: &[(&str, Reach)] = &[
            ("8.8.8.8", Reach::Public),
            ("129.226.107.28", Reach::Public),
            ("10.0.0.1", Reach::Private),
            ("172.31.255.255", Reach::Private),
            ("172.32.0.1", Reach::Public),
            ("192.168.1.1", Reach::Private),
            ("100.64.0.1", Reach::Private),
            ("100.127.255.254", Reach::Private),
            ("100.128.0.1", Reach::Public),
            ("127.0.0.2", Reach::Loopback),
            ("169.254.169.254", Reach::LinkLocal),
            ("0.0.0.0", Reach::Unusable),
            ("224.0.0.1", Reach::Unusable),
            ("255.255.255.255", Reach::Unusable),
            ("::", Reach::Unusable),
            ("::1", Reach::Loopback),
            ("fd00::1", Reach::Private),
            ("fc00::1", Reach::Private),
            ("fe80::1", Reach::LinkLocal),
            ("ff02::1", Reach::Unusable),
            ("::ffff:10.0.0.1", Reach::Private),
            ("::ffff:127.0.0.1", Reach::Loopback),
            ("::ffff:169.254.169.254", Reach::LinkLocal),
            ("::ffff:8.8.8.8", Reach::Public),
            ("::127.0.0.1", Reach::Unusable),
            ("64:ff9b::a00:1", Reach::Private),
            ("64:ff9b::808:808", Reach::Public),
            ("2002:a00:1::1", Reach::Private),
            ("2001::1", Reach::Unusable),
            ("2001:db8::1", Reach::Unusable),
            ("2001:4860:4860::8888", Reach::Public),
            ("2402:4e00::", Reach::Public),
        ];
        for (ip, want) in cases {
            let (got, why) = reach(ip.parse().unwrap());
            assert_eq!(got, *want, "{ip}: {why}");
        }
    }

    #[test]
    fn https_targets_must_be_public() {
        for (raw, words) in [
            ("https://169.254.169.254", "link-local"),
            ("https://10.0.0.1", "private address (10.0.0.0/8)"),
            ("https://100.64.0.1", "carrier-grade NAT"),
            ("https://[fd00::1]", "unique-local"),
            ("https://[fe80::1]", "link-local"),
            ("https://[::ffff:a00:1]", "private"),
            ("https://127.0.0.1:8443", "loopback"),
            ("https://[::1]", "loopback"),
            ("https://0.0.0.0", "unspecified"),
            ("https://[::]", "unspecified"),
            ("https://224.0.0.1", "multicast"),
        ] {
            let e = refused(raw);
            assert!(e.contains(words), "{raw}: {e}");
        }
        assert!(refused("https://10.0.0.1").contains(ALLOW_PRIVATE_ENV));
        let ok = check_url("https://console.tim.qq.com/", STRICT).unwrap();
        assert_eq!(ok.url, "https://console.tim.qq.com");
        assert_eq!((ok.scheme, ok.port, ok.ip), (Scheme::Https, 443, None));
        assert!(check_url("https://129.226.107.28", STRICT).is_ok());
    }

    #[test]
    fn the_operator_setting_admits_private_but_never_metadata() {
        for raw in [
            "https://10.0.0.1",
            "https://100.64.0.1",
            "https://[fd00::1]",
            "https://127.0.0.1:8443",
        ] {
            assert!(check_url(raw, OPEN).is_ok(), "{raw}");
        }
        for raw in [
            "https://169.254.169.254",
            "https://[fe80::1]",
            "https://0.0.0.0",
            "http://10.0.0.1",
            "http://127.0.0.2",
        ] {
            assert!(check_url(raw, OPEN).is_err(), "{raw}");
        }
    }

    #[test]
    fn plain_http_is_exactly_this_machine() {
        for raw in [
            "http://127.0.0.1:9100",
            "http://localhost:9100",
            "http://LOCALHOST:9100/",
            "http://[::1]:9100",
        ] {
            assert!(check_url(raw, STRICT).is_ok(), "{raw}");
        }
        for raw in [
            "http://127.0.0.2:9100",
            "http://2130706433:9100",
            "http://0x7f.0.0.1:9100",
            "http://0177.0.0.1:9100",
            "http://127.1:9100",
            "http://%31%32%37.0.0.1:9100",
            "http://[0:0:0:0:0:0:0:1]:9100",
            "http://[::ffff:127.0.0.1]:9100",
            "http://localhost.:9100",
            "http://sub.localhost:9100",
            "http://console.tim.qq.com",
            "http://10.0.0.1",
        ] {
            assert!(check_url(raw, STRICT).is_err(), "{raw} was accepted");
        }
        assert!(refused("http://2130706433:9100").contains("write the host as 127.0.0.1"));
        assert!(refused("http://127.0.0.2:9100").contains("plain http"));
        // The same spellings over https are refused too, whatever they point at.
        assert!(refused("https://134744072").contains("write the host as 8.8.8.8"));
    }

    #[test]
    fn userinfo_and_odd_input_are_refused() {
        for raw in [
            "https://user:pw@console.tim.qq.com",
            "https://user@console.tim.qq.com",
            "https://:pw@console.tim.qq.com",
            "https://:@console.tim.qq.com",
            "https://@console.tim.qq.com",
            "http://x@127.0.0.1:9100",
        ] {
            let e = refused(raw);
            assert!(e.contains("user name or password"), "{raw}: {e}");
            assert!(!e.contains("pw"), "the password is echoed: {e}");
        }
        assert!(refused("https://console.tim\n.qq.com").contains("control"));
        assert!(refused("ftp://x").contains("scheme"));
        assert!(refused("not a url").contains("spaces"));
        assert!(refused("not-a-url").contains("not a URL"));
        assert!(refused("https://console.tim.qq.com/?a=1").contains("without query"));
        // Internationalised names become punycode and are fine.
        assert_eq!(
            check_url("https://bücher.example", STRICT).unwrap().host,
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn sandboxes_this_process_started_are_admitted() {
        // A port no test binds, so the registry is the only reason for the answer.
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(check_url("https://127.0.0.1:1", STRICT).is_err());
        register_sandbox(addr);
        assert!(check_url("https://127.0.0.1:1", STRICT).is_ok());
        // Only that port.
        assert!(check_url("https://127.0.0.1:2", STRICT).is_err());
        forget_sandbox(addr);
        assert!(check_url("https://127.0.0.1:1", STRICT).is_err());
    }

    #[test]
    fn resolver_keeps_only_admitted_answers() {
        let https = check_url("https://tim.example", STRICT).unwrap();
        let r = GuardedResolver::new(&https, STRICT);
        let a = |s: &str| -> SocketAddr { format!("{s}:0").parse().unwrap() };
        // A name that resolves inside the network is refused, whatever its text says.
        let e = r
            .filter("tim.example", &[a("10.1.2.3"), a("[fd00::5]")])
            .unwrap_err();
        assert!(
            e.0.starts_with("tim.example resolved to 10.1.2.3, fd00::5: 10.1.2.3 is a private"),
            "{e}"
        );
        assert!(r.filter("tim.example", &[a("169.254.169.254")]).is_err());
        assert!(r
            .filter("tim.example", &[])
            .unwrap_err()
            .0
            .contains("no address"));
        // A mixed answer (rebinding) keeps only the public address, on the target's port.
        assert_eq!(
            r.filter("tim.example", &[a("127.0.0.1"), a("129.226.107.28")])
                .unwrap(),
            vec!["129.226.107.28:443".parse::<SocketAddr>().unwrap()]
        );
        // Plain http to localhost: loopback answers only.
        let http = check_url("http://localhost:9100", STRICT).unwrap();
        let r = GuardedResolver::new(&http, STRICT);
        assert!(r.filter("localhost", &[a("127.0.0.1")]).is_ok());
        assert!(r.filter("localhost", &[a("10.0.0.7")]).is_err());
    }
}
