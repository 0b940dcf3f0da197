use imshift::model::Role;
use imshift::web::{self, Config};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::net::SocketAddr;

pub const OWNER: &str = "owner@example.com";
pub const PASSWORD: &str = "correct horse battery";

/// The test process's log. Warnings and errors are printed to the running test's output, so a
/// failing test shows what the server logged (an "internal error" tells its client no more):
/// the server's tasks run on the test's own single-threaded runtime, so a test's output holds
/// its own server's lines. A test that reads the log ([`Logs::capture`]) also gets every line
/// at trace level from then on; only a global subscriber sees every task.
static CAPTURING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Clone, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Starts keeping every line, for a test that searches the log.
    pub fn capture() -> &'static Logs {
        CAPTURING.store(true, std::sync::atomic::Ordering::Relaxed);
        Self::global()
    }

    pub fn global() -> &'static Logs {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::{filter, fmt, EnvFilter, Layer};
        static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Logs::default();
            let writer = logs.clone();
            let printed = std::env::var("IMSHIFT_TEST_LOG").unwrap_or_else(|_| "warn".into());
            let subscriber = tracing_subscriber::registry()
                .with(
                    fmt::layer()
                        .with_writer(move || writer.clone())
                        // Dynamic: asked at every event (a plain `filter_fn` is cached per
                        // call site, and would keep what it said before capturing began).
                        .with_filter(filter::dynamic_filter_fn(|_, _| {
                            CAPTURING.load(std::sync::atomic::Ordering::Relaxed)
                        })),
                )
                .with(
                    fmt::layer()
                        .with_test_writer()
                        .with_filter(EnvFilter::new(printed)),
                );
            tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
            logs
        })
    }
}

pub struct TestApp {
    pub base: String,
    pub pool: PgPool,
    /// Dump ingests and import tasks run here, as in the console.
    pub _workers: Option<imshift::jobs::WorkerPool>,
    /// Where this console keeps uploads until they are staged.
    pub data_dir: std::path::PathBuf,
}

/// A client that behaves like the console's own pages: cookies, and the Origin a browser sends.
pub struct Browser {
    pub http: Client,
    pub base: String,
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> TestApp {
        Self::spawn_with(pool, |_| {}).await
    }

    pub async fn spawn_with(pool: PgPool, tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_keyed(pool, tweak, imshift::secrets::MasterKey::generate()).await
    }

    /// With a master key of the test's choosing (console processes it starts share it).
    pub async fn spawn_keyed(
        pool: PgPool,
        tweak: impl FnOnce(&mut Config),
        master_key: imshift::secrets::MasterKey,
    ) -> TestApp {
        Logs::global();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let mut config = Config::for_url(&base);
        config.data_dir =
            std::env::temp_dir().join(format!("imshift-test-{}", uuid::Uuid::new_v4()));
        tweak(&mut config);
        let leptos = leptos::config::LeptosOptions::builder()
            .output_name("imshift")
            .site_root("target/site")
            .site_pkg_dir("pkg")
            .build();
        std::fs::create_dir_all(&config.data_dir).unwrap();
        let data_dir = config.data_dir.clone();
        let (app, state) = web::build_with_state(pool.clone(), config, leptos, master_key)
            .await
            .unwrap();
        let workers = web::workers::start(&state).await.unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        TestApp {
            base,
            pool,
            _workers: workers,
            data_dir,
        }
    }

    pub fn browser(&self) -> Browser {
        Browser {
            http: Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: self.base.clone(),
        }
    }

    /// A plain client: no cookies, no Origin, no redirects followed.
    /// `/metrics` as a scraper on this machine reads it.
    pub async fn metrics(&self) -> String {
        self.anon()
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn anon(&self) -> Client {
        Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// The owner, set up through the one-time setup call, signed in.
    pub async fn owner(&self) -> Browser {
        let b = self.browser();
        let r = b
            .call(
                "setup",
                &[
                    ("email", OWNER),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                ],
            )
            .await;
        assert!(
            r.status().is_success(),
            "setup failed: {}",
            r.text().await.unwrap()
        );
        b
    }

    /// A member with `role`, created as a script would, signed in.
    pub async fn member(&self, email: &str, role: Role) -> Browser {
        imshift::auth::users::create_from_cli(&self.pool, email, role, PASSWORD)
            .await
            .unwrap();
        let b = self.browser();
        let r = b.login(email, PASSWORD).await;
        assert!(
            r.status().is_success(),
            "login failed: {}",
            r.text().await.unwrap()
        );
        b
    }

    /// A personal API token for a signed-in browser.
    pub async fn token(&self, b: &Browser) -> String {
        let r = b
            .api(
                Method::POST,
                "/api/v1/tokens",
                Some(serde_json::json!({"name": "test"})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["secret"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn with_token(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Response {
        let mut rb = self
            .anon()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        rb.send().await.unwrap()
    }

    pub async fn audit_actions(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }
}

impl Browser {
    fn origin(&self) -> &str {
        &self.base
    }

    /// Calls a UI server function the way the hydrated page does.
    pub async fn call(&self, name: &str, form: &[(&str, &str)]) -> Response {
        self.http
            .post(format!("{}/_fn/{name}", self.base))
            .header("origin", self.origin())
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.call(
            "login",
            &[("email", email), ("password", password), ("next", "/")],
        )
        .await
    }

    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("origin", self.origin());
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        rb.send().await.unwrap()
    }

    /// Creates a migration (`strategy`, `source` → `target`) and answers its id.
    pub async fn new_migration(
        &self,
        name: &str,
        strategy: &str,
        source: &str,
        target: &str,
    ) -> String {
        let body = json!({"name": name, "strategy": strategy, "source": source, "target": target});
        let r = self
            .api(Method::POST, "/api/v1/migrations", Some(body))
            .await;
        id_of(r, StatusCode::CREATED).await
    }

    /// [`Browser::api`]'s answer as JSON, whatever its status.
    pub async fn json(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.api(method, path, body).await.json().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
}

/// The JSON error body's code, checking its shape on the way.
/// The `id` of what an answer created, after checking its status (showing the body if not).
pub async fn id_of(r: Response, status: StatusCode) -> String {
    assert_eq!(r.status(), status, "{}", r.text().await.unwrap());
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn error_code(r: Response) -> String {
    let v: Value = r.json().await.expect("error body is JSON");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error body has a message: {v}"
    );
    v["error"]["code"].as_str().expect("error.code").to_string()
}

/// Polls `f` every 100 ms until it answers `Some`, for up to `limit`.
pub async fn poll_for<T, F, Fut>(what: &str, limit: std::time::Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Polls `f` until it answers `Some`, for up to 20 s.
pub async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    poll_for(what, std::time::Duration::from_secs(20), f).await
}

/// Now, in milliseconds, to the second (as the sides' events carry it).
pub fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() * 1000
}

/// The dead letters of a migration's sync, newest first, as the event log lists them.
pub async fn dead_letters(owner: &Browser, id: &str) -> serde_json::Value {
    owner
        .json(
            reqwest::Method::GET,
            &format!("/api/v1/migrations/{id}/sync/events?state=dead"),
            None,
        )
        .await
}

/// Uploads `body` as one dump file of migration `id` (with `owner`'s token) and waits until it
/// is staged and its report is current with no errors.
pub async fn stage_dump(
    app: &TestApp,
    owner: &Browser,
    id: &str,
    file_name: &str,
    body: impl Into<reqwest::Body>,
) {
    let token = app.token(owner).await;
    let base = format!("/api/v1/migrations/{id}");
    let r = app
        .anon()
        .post(format!("{}{base}/dumps?file_name={file_name}", app.base))
        .bearer_auth(&token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    poll_for(
        "the dump staged",
        std::time::Duration::from_secs(120),
        || async {
            let list = owner
                .json(Method::GET, &format!("{base}/dumps"), None)
                .await;
            let report = owner
                .json(Method::GET, &format!("{base}/dumps/report"), None)
                .await;
            let state = list[0]["state"].as_str().unwrap().to_string();
            assert_ne!(state, "failed", "{list:#}");
            (state == "staged" && report["state"] == "current").then(|| {
                assert_eq!(report["errors"], 0, "{report:#}");
            })
        },
    )
    .await;
}
