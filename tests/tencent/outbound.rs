//! The outbound guard against real local HTTP servers: no redirects, capped answers, unknown
//! answers described rather than shown, and private targets refused before any connection.
//! Every server here listens on 127.0.0.1; nothing is sent anywhere else.

use crate::common::*;
use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use imshift::providers::outbound::{self, Policy};
use imshift::providers::tencent::client::{TencentClient, TencentConfig};
use imshift::providers::tencent::TencentError;
use imshift::providers::ErrorClass;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn cfg(base_url: String) -> TencentConfig {
    TencentConfig {
        base_url,
        sdkappid: APP,
        admin: ADMIN.into(),
        secret: SecretString::from(KEY.to_string()),
        usersig_ttl_secs: 86_400,
    }
}

/// Serves `app` on 127.0.0.1 and returns its address.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A server answering every request with `f()`, counting the requests.
async fn answering(
    f: impl Fn() -> Response + Clone + Send + Sync + 'static,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().fallback(move || {
        let f = f.clone();
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            f()
        }
    });
    (serve(app).await, hits)
}

async fn check(base: String) -> Result<(), TencentError> {
    TencentClient::new(cfg(base))
        .unwrap()
        .account_check(&[ADMIN.to_string()])
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_its_target_never_hears_of_it() {
    // The place a hostile target would send the signed request to.
    let (inner, inner_hits) = answering(|| {
        (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[],"Note":"internal-only text"}"#,
        )
            .into_response()
    })
    .await;
    let location = format!("http://127.0.0.1:{}/internal/admin?token=1", inner.port());
    let (outer, _) = answering(move || {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location.clone())],
            "moved",
        )
            .into_response()
    })
    .await;
    let e = check(format!("http://{outer}")).await.unwrap_err();
    assert!(
        matches!(e, TencentError::Redirect { status: 307, .. }),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("HTTP 307")
            && text.contains("not followed")
            && text.contains(&format!("to http://127.0.0.1:{}", inner.port())),
        "{text}"
    );
    assert!(
        !text.contains("internal") && !text.contains("token"),
        "{text}"
    );
    assert_eq!(e.class(), ErrorClass::Auth);
    assert_eq!(
        inner_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

/// A server streaming `total` bytes in 64 KiB chunks, counting what it produced; with
/// `declare` it also sends the Content-Length.
async fn streaming(total: u64, declare: bool) -> (SocketAddr, Arc<AtomicU64>) {
    let produced = Arc::new(AtomicU64::new(0));
    let p = produced.clone();
    let app = Router::new().fallback(move || {
        let p = p.clone();
        async move {
            const CHUNK: u64 = 64 << 10;
            let chunk = axum::body::Bytes::from(vec![b'x'; CHUNK as usize]);
            let stream = futures_util::stream::unfold(0u64, move |sent| {
                let chunk = chunk.clone();
                let p = p.clone();
                async move {
                    if sent >= total {
                        return None;
                    }
                    let n = CHUNK.min(total - sent);
                    p.fetch_add(n, Ordering::SeqCst);
                    Some((Ok::<_, std::io::Error>(chunk.slice(..n as usize)), sent + n))
                }
            });
            let mut r = Response::new(Body::from_stream(stream));
            if declare {
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, total.to_string().parse().unwrap());
            }
            r
        }
    });
    (serve(app).await, produced)
}

#[tokio::test]
async fn a_300_mb_answer_is_refused_without_reading_it() {
    const TOTAL: u64 = 300 << 20;
    for declare in [false, true] {
        let (addr, produced) = streaming(TOTAL, declare).await;
        let e = check(format!("http://{addr}")).await.unwrap_err();
        assert!(
            matches!(e, TencentError::TooLarge { limit, .. } if limit == outbound::MAX_ANSWER_BYTES),
            "declared {declare}: {e:?}"
        );
        assert!(e.to_string().contains("larger than 8 MB"), "{e}");
        // The client stopped reading at the cap: the server got no further than the cap plus
        // what the sockets buffer, nowhere near the 300 MB it meant to send.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = produced.load(Ordering::SeqCst);
        assert!(
            sent < 40 << 20,
            "declared {declare}: the server produced {} MB",
            sent >> 20
        );
    }
}

#[tokio::test]
async fn unknown_answers_are_described_never_shown() {
    const PAGE: &str = "<html><body><h1>502 Bad Gateway</h1><p>upstream internal-billing.corp:8080 refused; admin password hint: hunter2</p></body></html>";
    let (addr, _) = answering(|| (StatusCode::BAD_GATEWAY, PAGE).into_response()).await;
    let e = check(format!("http://{addr}")).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "the target answered HTTP 502 with a body that is not Tencent IM's JSON ({} bytes)",
            PAGE.len()
        )),
        "{text}"
    );
    assert!(
        !text.contains("internal-billing") && !text.contains("hunter2"),
        "{text}"
    );
    assert_eq!(e.class(), ErrorClass::Retryable);

    // A 200 that is not JSON, and JSON whose fields are not Tencent IM's: sizes, not contents.
    for body in [
        "internal-billing says hello",
        r#"{"ActionStatus":"OK","ErrorCode":0,"ResultItem":"internal-billing secret"}"#,
    ] {
        let (addr, _) = answering(move || body.into_response()).await;
        let e = check(format!("http://{addr}")).await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, TencentError::Decode { .. }), "{e:?}");
        assert!(text.contains(&format!("({} bytes)", body.len())), "{text}");
        assert!(!text.contains("internal-billing"), "{text}");
    }

    // A gateway that carries Tencent IM's own error: its code and words are shown.
    let (addr, _) = answering(|| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"ActionStatus":"FAIL","ErrorCode":70009,"ErrorInfo":"sig check failed"}"#,
        )
            .into_response()
    })
    .await;
    let e = check(format!("http://{addr}")).await.unwrap_err();
    assert_eq!(e.code(), Some(70009));
    let text = e.to_string();
    assert!(
        text.contains("70009")
            && text.contains("copy the key again")
            && text.contains("sig check failed"),
        "{text}"
    );
}

#[tokio::test]
async fn private_and_odd_targets_are_refused() {
    for (url, words) in [
        ("https://169.254.169.254", "link-local"),
        ("https://10.0.0.1", "private address"),
        ("https://100.64.0.1", "carrier-grade NAT"),
        ("https://[fd00::1]", "unique-local"),
        ("https://[::ffff:a9fe:a9fe]", "link-local"),
        (
            "https://[::ffff:169.254.169.254]",
            "write the host as [::ffff:a9fe:a9fe]",
        ),
        (
            "https://user:pw@console.tim.qq.com",
            "user name or password",
        ),
        ("http://127.0.0.2:9100", "plain http"),
        ("http://2130706433:9100", "write the host as 127.0.0.1"),
        ("http://0x7f000001:9100", "write the host as 127.0.0.1"),
        ("http://console.tim.qq.com", "plain http"),
    ] {
        match TencentClient::new(cfg(url.into())) {
            Err(TencentError::Config(m)) => assert!(m.contains(words), "{url}: {m}"),
            other => panic!("{url} was not refused: {other:?}"),
        }
    }
}

/// A TCP listener on 127.0.0.1 that counts the connections it gets (and answers none).
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            drop(sock);
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_before_connecting() {
    // `localhost` is a name: only its DNS answer (127.0.0.1) says where it points.
    let (port, accepted) = counting_listener().await;
    let c = TencentClient::new(cfg(format!("https://localhost:{port}"))).unwrap();
    let e = c.account_check(&[ADMIN.to_string()]).await.unwrap_err();
    assert!(matches!(e, TencentError::Blocked { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("localhost resolved to") && text.contains("loopback"),
        "{text}"
    );
    assert!(!text.contains("usersig"), "{text}");
    assert_eq!(e.class(), ErrorClass::Auth);
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "it connected anyway");

    // With the operator's setting the same name is admitted and reached (over TLS, which this
    // listener does not speak, so the call fails after connecting).
    let open = Policy {
        allow_private: true,
    };
    let c = TencentClient::with_policy(cfg(format!("https://localhost:{port}")), open).unwrap();
    let e = c.account_check(&[ADMIN.to_string()]).await.unwrap_err();
    assert!(matches!(e, TencentError::Transport { .. }), "{e:?}");
    assert!(accepted.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn sandboxes_are_still_reached_over_loopback_http() {
    let h = sandbox().await;
    for base in [h.base_url(), format!("http://localhost:{}", h.addr.port())] {
        let c = TencentClient::new(cfg(base.clone())).unwrap();
        let r = c.account_check(&[ADMIN.to_string()]).await;
        assert!(r.is_ok(), "{base}: {r:?}");
    }
}

#[tokio::test]
async fn a_sandbox_this_process_registered_is_admitted_over_https() {
    // The console registers the sandboxes it starts; https to one passes the address check.
    let (port, accepted) = counting_listener().await;
    let base = format!("https://127.0.0.1:{port}");
    assert!(TencentClient::new(cfg(base.clone())).is_err());
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    outbound::register_sandbox(addr);
    let c = TencentClient::new(cfg(base.clone()));
    outbound::forget_sandbox(addr);
    let e = c
        .unwrap()
        .account_check(&[ADMIN.to_string()])
        .await
        .unwrap_err();
    // It connected (the listener speaks no TLS): the guard let it through.
    assert!(matches!(e, TencentError::Transport { .. }), "{e:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert!(TencentClient::new(cfg(base)).is_err());
}
