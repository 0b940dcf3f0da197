//! A migration's Dumps tab: drop files to upload them (resumable, with progress, speed and time
//! left), watch each one staged, and read the validation report: counts, what will be imported,
//! and every rule that found something, with examples pointing at file and line.

use crate::app::calls_dumps::{dump_findings, dump_formats, load_dumps, DiscardUpload};
use crate::app::components::{
    action_error, bytes, can, count, duration, plural, resource, when, EmptyState, ErrorNote,
};
use crate::model::{
    DumpReport, FindingRow, MigrationId, Permission, ReportState, Upload, UploadId, UploadState,
};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use std::collections::BTreeMap;

/// A file this browser is sending right now.
#[derive(Clone, Debug, PartialEq)]
struct Sending {
    key: u64,
    name: String,
    size: f64,
    sent: f64,
    started: f64,
    error: Option<String>,
    /// The upload on the server, once announced: its row in the list shows this progress.
    upload: Option<UploadId>,
}

const KINDS: [(&str, &str); 8] = [
    ("account", "Accounts"),
    ("friend", "Friends"),
    ("block", "Blocks"),
    ("group", "Groups"),
    ("member", "Group members"),
    ("message", "Messages"),
    ("group_event", "Group events"),
    ("conversation", "Conversations"),
];

fn use_id() -> Memo<Option<MigrationId>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("id").and_then(|s| s.parse().ok()))
}

fn busy_upload(u: &Upload) -> bool {
    matches!(u.state, UploadState::Queued | UploadState::Ingesting)
}

fn pct(done: f64, total: f64) -> f64 {
    if total <= 0.0 {
        0.0
    } else {
        (done / total * 100.0).clamp(0.0, 100.0)
    }
}

#[component]
fn Progress(done: f64, total: f64, #[prop(optional)] testid: &'static str) -> impl IntoView {
    let p = pct(done, total);
    view! {
        <div class="progress" role="progressbar" aria-valuenow=format!("{p:.0}") aria-valuemin="0" aria-valuemax="100" data-testid=testid>
            <span style=format!("width: {p:.1}%")></span>
        </div>
    }
    .into_any()
}

/// "12.0 MB of 40.0 MB · 5.1 MB/s · 6 s left"
fn rate_line(done: f64, total: f64, elapsed_secs: f64) -> String {
    let mut s = format!("{} of {}", bytes(done as i64), bytes(total as i64));
    if elapsed_secs > 0.5 && done > 0.0 {
        let speed = done / elapsed_secs;
        s.push_str(&format!(" · {}/s", bytes(speed as i64)));
        if done < total {
            s.push_str(&format!(" · {} left", duration((total - done) / speed)));
        }
    }
    s
}

#[component]
pub fn DumpsTab() -> impl IntoView {
    let id = use_id();
    let tick = RwSignal::new(0u32);
    let discard = ServerAction::<DiscardUpload>::new();
    let data = resource(
        move || (id.get(), tick.get(), discard.version().get()),
        |(id, _, _)| async move {
            match id {
                Some(id) => load_dumps(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let sending = RwSignal::new(Vec::<Sending>::new());
    // The browser's clock, for "how long since the last byte arrived". Zero while the page is
    // rendered on the server and hydrated, so both render the same; set right after.
    let clock = RwSignal::new(0.0f64);
    Effect::new(move |_| clock.set(now_ms()));
    // Whether the server side moves (an upload fed by someone, an ingest, a validation), copied
    // from the resource by an effect: the timer below runs outside any loading boundary, where
    // reading a resource would warn (and could read a value hydration has not settled yet).
    let server_busy = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(Ok(d)) = data.get() {
            let now = now_ms();
            server_busy.set(d.is_some_and(|(us, r)| {
                us.iter().any(|u| busy_upload(u) || fed_recently(u, now))
                    || r.state == ReportState::Validating
            }));
        }
    });
    // Keep polling while anything moves: a file in flight, an ingest, a validation.
    let busy = move || {
        sending.with_untracked(|s| s.iter().any(|x| x.error.is_none()))
            || server_busy.get_untracked()
    };
    #[cfg(feature = "hydrate")]
    {
        if let Ok(h) = set_interval_with_handle(
            move || {
                clock.set(now_ms());
                if busy() {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_millis(1000),
        ) {
            on_cleanup(move || h.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = busy;
    let may_upload = can(Permission::RunMigrations);
    let rows = Rows {
        discard,
        sending,
        tick,
        clock,
        may_upload,
    };
    view! {
        {may_upload.then(|| view! { <UploadCard sending tick/> })}
        <section class="card" data-testid="uploads">
            <h2>"Uploads"</h2>
            <SendingList sending/>
            {action_error(discard.value())}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await.map(|d| d.map(|(u, _)| u).unwrap_or_default()) {
                        Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                        Ok(list) => view! { <UploadTable list rows/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match data.await {
                    Err(_) | Ok(None) => ().into_any(),
                    Ok(Some((_, r))) => view! { <ReportView r id=id.get_untracked().unwrap_or(MigrationId::NIL)/> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

/// Milliseconds since the epoch: the browser's clock, or the server's while rendering there.
fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        crate::app::browser::now_ms()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as f64
    }
}

/// An upload counts as interrupted only after this long without a byte arriving: a piece is
/// 8 MB, which even a 100 KB/s line delivers in under 90 s.
const IDLE_SECS: f64 = 120.0;

/// Seconds since bytes last arrived for an upload still receiving (or since it was announced).
fn quiet_secs(u: &Upload, now_ms: f64) -> Option<f64> {
    let last = u.received_at?;
    Some((now_ms / 1000.0 - last.unix_timestamp_nanos() as f64 / 1e9).max(0.0))
}

fn fed_recently(u: &Upload, now_ms: f64) -> bool {
    u.state == UploadState::Uploading && quiet_secs(u, now_ms).is_some_and(|q| q < IDLE_SECS)
}

/// The files this browser is sending right now, with speed and time left.
#[component]
fn SendingList(sending: RwSignal<Vec<Sending>>) -> impl IntoView {
    move || {
        let list = sending.get();
        (!list.is_empty()).then(|| {
            view! {
                <div class="sending">
                    {list.into_iter().map(|s| {
                        let elapsed = (now_ms() - s.started) / 1000.0;
                        view! {
                            <div class="sending-row" data-testid="sending">
                                <div class="sending-name">{s.name.clone()}</div>
                                <Progress done=s.sent total=s.size/>
                                <div class="hint">{match &s.error {
                                    Some(e) => format!("Stopped: {e}. Resume it from the list below."),
                                    None if s.sent >= s.size => "Sent; staging starts…".to_string(),
                                    None => format!("Sending {}", rate_line(s.sent, s.size, elapsed)),
                                }}</div>
                            </div>
                        }
                    }).collect_view()}
                </div>
            }
            .into_any()
        })
    }
}

/// What every upload row needs from the tab.
#[derive(Clone, Copy)]
struct Rows {
    discard: ServerAction<DiscardUpload>,
    sending: RwSignal<Vec<Sending>>,
    tick: RwSignal<u32>,
    clock: RwSignal<f64>,
    may_upload: bool,
}

#[component]
fn UploadTable(list: Vec<Upload>, rows: Rows) -> impl IntoView {
    if list.is_empty() {
        return view! {
            <EmptyState title="No dumps yet">
                <p>"Upload the old system's exports: imshift's canonical JSON Lines, a vendor's own export (the Format list names those imshift reads) or CSV of accounts, friends and members — plain, .gz or .zip."</p>
            </EmptyState>
        }
        .into_any();
    }
    view! {
        <table class="table uploads">
            <thead><tr><th>"File"</th><th>"State"</th><th>"Progress"</th><th>"Records"</th><th>"Uploaded"</th><th></th></tr></thead>
            <tbody>
            {list.into_iter().map(|u| view! { <UploadRow u rows/> }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn UploadCard(sending: RwSignal<Vec<Sending>>, tick: RwSignal<u32>) -> impl IntoView {
    let id = use_id();
    let format = RwSignal::new("auto".to_string());
    // The formats this build reads (each vendor's export comes from its provider).
    let choices = resource(
        || (),
        |_| async { dump_formats().await.unwrap_or_default() },
    );
    let mode = RwSignal::new("add".to_string());
    let over = RwSignal::new(false);
    let pick = NodeRef::<leptos::html::Input>::new();
    #[cfg(feature = "hydrate")]
    let start = move |files: web_sys::FileList| {
        let Some(mid) = id.get_untracked() else {
            return;
        };
        let files: Vec<web_sys::File> = (0..files.length()).filter_map(|i| files.get(i)).collect();
        start_uploads(
            mid,
            files,
            format.get_untracked(),
            mode.get_untracked(),
            sending,
            tick,
        );
    };
    #[cfg(not(feature = "hydrate"))]
    let _ = (sending, tick, id);
    view! {
        <section class="card">
            <h2>"Upload dumps"</h2>
            <div class="dropzone" class:over=move || over.get() data-testid="dropzone"
                on:dragover=move |ev| { ev.prevent_default(); over.set(true); }
                on:dragleave=move |_| over.set(false)
                on:drop=move |ev| {
                    ev.prevent_default();
                    over.set(false);
                    #[cfg(feature = "hydrate")]
                    if let Some(files) = ev.data_transfer().and_then(|d| d.files()) { start(files); }
                }
                on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    if let Some(i) = pick.get() { i.click(); }
                }>
                <p><strong>"Drop files here"</strong>" or click to choose them."</p>
                <p class="hint">"imshift's JSON Lines, a vendor's export (see Format) or CSV · plain, .gz or .zip · resumable; large files stream straight to disk."</p>
            </div>
            <input type="file" multiple node_ref=pick class="visually-hidden" data-testid="file-input"
                on:change=move |ev| {
                    #[cfg(feature = "hydrate")]
                    {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        if let Some(files) = input.files() { start(files); }
                        input.set_value("");
                    }
                    #[cfg(not(feature = "hydrate"))]
                    let _ = ev;
                }/>
            <div class="row-form upload-options">
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let list = choices.await;
                        view! {
                            <label>"Format"
                                <select on:change=move |ev| format.set(event_target_value(&ev)) data-testid="upload-format">
                                    {list.into_iter().map(|c| {
                                        let auto = c.id == "auto";
                                        view! { <option value=c.id selected=auto>{c.label}</option> }
                                    }).collect_view()}
                                </select>
                            </label>
                        }
                    })}
                </Suspense>
                <label>"Staged data"
                    <select on:change=move |ev| mode.set(event_target_value(&ev)) data-testid="upload-mode">
                        <option value="add" selected>"Add to what is staged"</option>
                        <option value="replace">"Replace everything staged so far"</option>
                    </select>
                </label>
            </div>
        </section>
    }
    .into_any()
}

#[cfg(feature = "hydrate")]
fn start_uploads(
    mid: MigrationId,
    files: Vec<web_sys::File>,
    format: String,
    mode: String,
    sending: RwSignal<Vec<Sending>>,
    tick: RwSignal<u32>,
) {
    use crate::app::browser::{error_message, now_ms, request, send_file, Body};
    leptos::task::spawn_local(async move {
        for file in files {
            let key = (now_ms() * 1000.0) as u64 + file.size() as u64 % 1000;
            let name = file.name();
            let size = file.size();
            sending.update(|s| {
                s.push(Sending {
                    key,
                    name: name.clone(),
                    size,
                    sent: 0.0,
                    started: now_ms(),
                    error: None,
                    upload: None,
                })
            });
            let set = move |f: &dyn Fn(&mut Sending)| {
                sending.update(|s| {
                    if let Some(x) = s.iter_mut().find(|x| x.key == key) {
                        f(x)
                    }
                })
            };
            let body = serde_json::json!({"file_name": name, "size_bytes": size as u64, "format": format, "mode": mode}).to_string();
            let created = request(
                "POST",
                &format!("/api/v1/migrations/{mid}/uploads"),
                Body::Json(&body),
                None,
            )
            .await;
            let upload_id = match created {
                Ok((201, text)) => serde_json::from_slice::<serde_json::Value>(text.as_bytes())
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_string)),
                Ok((status, text)) => {
                    let e = error_message(status, &text);
                    set(&|x| x.error = Some(e.clone()));
                    continue;
                }
                Err(e) => {
                    set(&|x| x.error = Some(e.clone()));
                    continue;
                }
            };
            let Some(upload_id) = upload_id else { continue };
            set(&|x| x.upload = upload_id.parse().ok());
            tick.update(|t| *t += 1);
            let url = format!("/api/v1/migrations/{mid}/uploads/{upload_id}");
            let result = send_file(&url, &file, 0.0, move |n| set(&|x| x.sent = n)).await;
            match result {
                Ok(()) => sending.update(|s| s.retain(|x| x.key != key)),
                Err(e) => set(&|x| x.error = Some(e.clone())),
            }
            tick.update(|t| *t += 1);
        }
    });
}

/// Who feeds an upload that is still receiving bytes.
#[derive(Clone, Copy, PartialEq)]
enum Feed {
    /// Not known yet (the page is being rendered or hydrated).
    Unknown,
    /// This browser, with this many bytes sent.
    Here(f64),
    /// Someone else (another browser, a script): bytes arrived within [`IDLE_SECS`].
    Elsewhere(f64),
    /// Nobody for at least [`IDLE_SECS`]: interrupted, resumable.
    Stopped(f64),
}

/// What the upload was read as: "imshift canonical JSON Lines (detected)" when the format was
/// told from the content, "(chosen)" when the uploader named it.
fn format_words(u: &Upload) -> String {
    let mut read: Vec<&str> = u.files.iter().map(|f| f.format_label.as_str()).collect();
    read.sort_unstable();
    read.dedup();
    if u.format != "auto" {
        return format!("{} (chosen)", u.format_label);
    }
    if read.is_empty() {
        "format told from the content once read".into()
    } else {
        format!("{} (detected)", read.join(", "))
    }
}

#[component]
fn UploadRow(u: Upload, rows: Rows) -> impl IntoView {
    let Rows {
        discard,
        may_upload,
        ..
    } = rows;
    let resume_error = RwSignal::new(None::<String>);
    let (mid, uid) = (u.migration_id, u.id);
    let files: Vec<String> = u
        .files
        .iter()
        .map(|f| format!("{} ({})", f.name, f.format_label))
        .collect();
    let progress = if u.state == UploadState::Uploading {
        view! { <Receiving u=u.clone() rows/> }.into_any()
    } else {
        staged_progress(&u)
    };
    view! {
        <tr data-testid="upload-row" data-state=u.state.as_str()>
            <td>
                <div class="file-name">{u.file_name.clone()}</div>
                <div class="hint" data-testid="upload-format-read">{format!("{} · {}", format_words(&u), if u.mode == "replace" { "replaces earlier uploads" } else { "adds to what is staged" })}</div>
                {(files.len() > 1).then(|| view! { <div class="hint">{files.join(", ")}</div> })}
            </td>
            <td><span class=format!("status upload-{}", u.state)>{u.state.label()}</span></td>
            <td class="progress-cell">{progress}{move || resume_error.get().map(|e| view! { <p class="alert alert-error">{e}</p> })}</td>
            <td>{(u.state == UploadState::Staged).then(|| format!("{}{}", plural(u.records, "record", "records"), if u.rejected > 0 { format!(", {}", plural(u.rejected, "line unreadable", "lines unreadable")) } else { String::new() }))}</td>
            <td class="nowrap">{when(&u.created_at)}<div class="hint">{u.created_by.clone()}</div></td>
            <td class="actions">
                {(may_upload && u.state == UploadState::Uploading).then(|| view! { <ResumeButton u=u.clone() rows resume_error/> })}
                {may_upload.then(|| view! {
                    <button class="btn btn-small btn-danger" data-testid="discard" on:click=move |_| {
                        discard.dispatch(DiscardUpload { id: mid, upload: uid });
                    }>"Discard"</button>
                })}
            </td>
        </tr>
    }
    .into_any()
}

/// Who is feeding `u` now, as far as this page can tell.
fn feed(u: &Upload, rows: Rows) -> Feed {
    let here = rows.sending.with(|s| {
        s.iter()
            .find(|x| x.upload == Some(u.id) && x.error.is_none())
            .map(|x| x.sent)
    });
    if let Some(sent) = here {
        return Feed::Here(sent);
    }
    let now = rows.clock.get();
    if now == 0.0 {
        return Feed::Unknown;
    }
    match quiet_secs(u, now) {
        Some(q) if q < IDLE_SECS => Feed::Elsewhere(q),
        Some(q) => Feed::Stopped(q),
        None => Feed::Stopped(IDLE_SECS),
    }
}

/// Progress of an upload still receiving: sent from here, fed from elsewhere, or interrupted.
#[component]
fn Receiving(u: Upload, rows: Rows) -> impl IntoView {
    let (received, size) = (u.received_bytes, u.size_bytes);
    move || {
        let feed = feed(&u, rows);
        let done = match feed {
            Feed::Here(sent) => sent,
            _ => received as f64,
        };
        let text = match feed {
            Feed::Here(sent) => format!(
                "Receiving from this browser: {} of {} sent.",
                bytes(sent as i64),
                bytes(size)
            ),
            Feed::Elsewhere(q) => format!(
                "{} of {} received; receiving (last piece {} ago).",
                bytes(received),
                bytes(size),
                duration(q)
            ),
            Feed::Stopped(q) => format!(
                "{} of {} received; nothing has arrived for {}: interrupted. Resume with the same file.",
                bytes(received),
                bytes(size),
                duration(q)
            ),
            Feed::Unknown => format!("{} of {} received.", bytes(received), bytes(size)),
        };
        let state = match feed {
            Feed::Here(_) => "here",
            Feed::Elsewhere(_) => "elsewhere",
            Feed::Stopped(_) => "interrupted",
            Feed::Unknown => "unknown",
        };
        view! {
            <Progress done total=size as f64/>
            <div class="hint" data-testid="upload-feed" data-feed=state>{text}</div>
        }
        .into_any()
    }
}

/// Resume, offered only once nobody has fed the upload for a while.
#[component]
fn ResumeButton(u: Upload, rows: Rows, resume_error: RwSignal<Option<String>>) -> impl IntoView {
    let resume_pick = NodeRef::<leptos::html::Input>::new();
    let (mid, uid) = (u.migration_id, u.id);
    let (name, size, received) = (u.file_name.clone(), u.size_bytes, u.received_bytes);
    let Rows { sending, tick, .. } = rows;
    let stopped = move || matches!(feed(&u, rows), Feed::Stopped(_));
    view! {
        <input type="file" node_ref=resume_pick class="visually-hidden" on:change=move |ev| {
            #[cfg(feature = "hydrate")]
            {
                let input: web_sys::HtmlInputElement = event_target(&ev);
                if let Some(file) = input.files().and_then(|f| f.get(0)) {
                    if file.name() != name || file.size() as i64 != size {
                        resume_error.set(Some(format!("That is {} ({}), not {name} ({}).", file.name(), plural(file.size() as i64, "byte", "bytes"), plural(size, "byte", "bytes"))));
                    } else {
                        resume_error.set(None);
                        resume(mid, uid, file, received, sending, tick);
                    }
                }
                input.set_value("");
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (ev, &name, size, received, sending, tick, mid, uid, resume_error);
        }/>
        <button class="btn btn-small" data-testid="resume-upload" hidden=move || !stopped() on:click=move |_| {
            #[cfg(feature = "hydrate")]
            if let Some(i) = resume_pick.get() { i.click(); }
        }>"Resume"</button>
    }
    .into_any()
}

/// The progress cell of an upload past receiving: queued, ingesting, failed or staged.
fn staged_progress(u: &Upload) -> AnyView {
    match u.state {
        UploadState::Queued => view! { <div class="hint">"Waiting for a worker…"</div> }.into_any(),
        UploadState::Ingesting => {
            let elapsed = u
                .ingest_started_at
                .map(|t| (time::OffsetDateTime::now_utc() - t).as_seconds_f64())
                .unwrap_or(0.0);
            let rate = if elapsed > 0.5 {
                format!(
                    " · {} records/s",
                    count((u.records as f64 / elapsed) as i64)
                )
            } else {
                String::new()
            };
            view! {
                <Progress done=u.read_bytes as f64 total=u.size_bytes as f64 testid="ingest-progress"/>
                <div class="hint">{format!("Reading: {} staged, {}{rate}", plural(u.records, "record", "records"), rate_line(u.read_bytes as f64, u.size_bytes as f64, elapsed))}</div>
            }.into_any()
        }
        UploadState::Failed => {
            view! { <p class="alert alert-error">{u.error.clone().unwrap_or_default()}</p> }
                .into_any()
        }
        UploadState::Uploading | UploadState::Staged | UploadState::Discarded => {
            let took = match (u.ingest_started_at, u.ingest_finished_at) {
                (Some(a), Some(b)) => format!(" in {}", duration((b - a).as_seconds_f64())),
                _ => String::new(),
            };
            view! { <div class="hint">{format!("Staged {}{took}", bytes(u.size_bytes))}</div> }
                .into_any()
        }
    }
}

#[cfg(feature = "hydrate")]
fn resume(
    mid: MigrationId,
    uid: UploadId,
    file: web_sys::File,
    from: i64,
    sending: RwSignal<Vec<Sending>>,
    tick: RwSignal<u32>,
) {
    use crate::app::browser::{now_ms, send_file};
    let key = (now_ms() * 1000.0) as u64;
    sending.update(|s| {
        s.push(Sending {
            key,
            name: file.name(),
            size: file.size(),
            sent: from as f64,
            started: now_ms(),
            error: None,
            upload: Some(uid),
        })
    });
    leptos::task::spawn_local(async move {
        let url = format!("/api/v1/migrations/{mid}/uploads/{uid}");
        let set = move |f: &dyn Fn(&mut Sending)| {
            sending.update(|s| {
                if let Some(x) = s.iter_mut().find(|x| x.key == key) {
                    f(x)
                }
            })
        };
        match send_file(&url, &file, from as f64, move |n| set(&|x| x.sent = n)).await {
            Ok(()) => sending.update(|s| s.retain(|x| x.key != key)),
            Err(e) => set(&|x| x.error = Some(e.clone())),
        }
        tick.update(|t| *t += 1);
    });
}

fn n(map: &BTreeMap<String, i64>, k: &str) -> i64 {
    map.get(k).copied().unwrap_or(0)
}

#[component]
fn ReportView(r: DumpReport, id: MigrationId) -> impl IntoView {
    if r.counts.is_empty() && r.rules.is_empty() && r.error.is_none() {
        return ().into_any();
    }
    let kinds: Vec<_> = KINDS
        .iter()
        .filter(|(k, _)| r.counts.contains_key(*k))
        .map(|(k, label)| {
            (
                *label,
                n(&r.counts, k),
                n(&r.accepted, k),
                n(&r.rejected, k),
                n(&r.superseded, k),
            )
        })
        .collect();
    let bodies: Vec<(String, i64)> = [
        "text", "image", "audio", "video", "file", "location", "face", "custom",
    ]
    .iter()
    .filter_map(|t| {
        r.counts
            .get(&format!("message.{t}"))
            .map(|c| (t.to_string(), *c))
    })
    .collect();
    let unreadable = n(&r.rejected, "unreadable_lines");
    let kept_aside: i64 = r.rejected.values().sum();
    let codes: Vec<String> = r.rules.iter().map(|x| x.code.clone()).collect();
    let browse = Browse::default();
    let (errors, warnings) = (r.errors, r.warnings);
    let show_errors = move |_| {
        browse.severity.set("error".into());
        browse.code.set(String::new());
        browse.pages.set(vec![None]);
        browse.shown.set(true);
        scroll_to("all-findings-browser");
    };
    view! {
        <section class="card" data-testid="report">
            <div class="card-head">
                <h2>"Validation report"</h2>
                <span class=if r.state == ReportState::Current { "status status-accepted" } else { "status status-pending" } data-testid="report-state">
                    {r.state.label()}
                </span>
            </div>
            {r.error.clone().map(|e| view! { <p class="alert alert-error" data-testid="report-error">{e}</p> })}
            <p class="lead" data-testid="report-summary">
                {format!("{} and {}: records kept aside are never imported; warned records are imported.", plural(errors, "error", "errors"), plural(warnings, "warning", "warnings"))}
                {r.validated_at.map(|t| format!(" Checked {}.", when(&t)))}
            </p>
            {(errors > 0 || kept_aside > 0).then(|| view! {
                <p class="hint errors-vs-kept" data-testid="errors-vs-kept">
                    {format!("{} kept {} aside. ", plural(errors, "error", "errors"), plural(kept_aside, "record", "records"))}
                    "The numbers differ because an error keeps aside the one record (or unreadable line) it is about, several errors may hit the same record, and some errors keep nothing aside (a damaged file, a rule about many records at once). "
                    <button type="button" class="linklike" data-testid="show-errors" on:click=show_errors>
                        {format!("Show the {}", plural(errors, "error", "errors"))}
                    </button>
                </p>
            })}
            <table class="table counts" data-testid="report-counts" id="report-counts">
                <thead><tr><th>"Kind"</th><th>"Read"</th><th>"Will be imported"</th><th>"Kept aside"</th><th>"Replaced by a later line"</th></tr></thead>
                <tbody>
                    {kinds.into_iter().map(|(label, read, ok, bad, sup)| view! {
                        <tr><td>{label}</td><td>{count(read)}</td><td class="ok">{count(ok)}</td>
                            <td class={if bad > 0 { "bad" } else { "" }}>{kept_cell(bad, show_errors)}</td><td>{count(sup)}</td></tr>
                    }).collect_view()}
                    {(unreadable > 0).then(|| view! {
                        <tr><td>"Lines that are no record"</td><td>{count(unreadable)}</td><td>"0"</td><td class="bad">{kept_cell(unreadable, show_errors)}</td><td>"0"</td></tr>
                    })}
                </tbody>
            </table>
            {(n(&r.counts, "message") > 0).then(|| view! {
                <p class="hint">{format!("Messages: {} one-to-one, {} group · ", count(n(&r.counts, "message.c2c")), count(n(&r.counts, "message.group")))}
                    {bodies.iter().map(|(t, c)| format!("{} {t}", count(*c))).collect::<Vec<_>>().join(", ")}</p>
            })}
        </section>
        {(!r.rules.is_empty()).then(|| view! {
            <section class="card" data-testid="findings">
                <div class="card-head">
                    <h2>"Findings by rule"</h2>
                    <a class="btn btn-small" rel="external" download="imshift-findings.csv" href=format!("/api/v1/migrations/{id}/dumps/findings.csv") data-testid="findings-csv">"Download all (CSV)"</a>
                </div>
                {r.rules.into_iter().map(|rule| view! {
                    <div class="rule" data-testid="rule" data-code=rule.code.clone()>
                        <div class="rule-head">
                            <span class=format!("sev sev-{}", rule.severity)>{rule.severity.clone()}</span>
                            <code>{rule.code.clone()}</code>
                            <span class="rule-count">{format!("{} ×", count(rule.count))}</span>
                        </div>
                        {(rule.not_kept > 0).then(|| view! {
                            <p class="hint" data-testid="rule-not-kept">{format!("{} counted but not kept: past the first findings of a rule in one upload (IMSHIFT_FINDINGS_PER_RULE), only the number is stored, so they are not in the list or the CSV.", if rule.not_kept == 1 { "1 of them was".to_string() } else { format!("{} of them were", count(rule.not_kept)) })}</p>
                        })}
                        <p class="rule-explain">{rule.explanation.clone()}</p>
                        <FindingTable rows=rule.examples/>
                    </div>
                }).collect_view()}
                <FindingsBrowser id codes browse kept_aside/>
            </section>
        })}
    }
    .into_any()
}

#[component]
fn FindingTable(rows: Vec<FindingRow>) -> impl IntoView {
    view! {
        <table class="table examples">
            <tbody>
            {rows.into_iter().map(|f| view! {
                <tr>
                    <td class="nowrap where">{format!("{}:{}", f.file, f.line)}</td>
                    <td>{f.message}<LineSeen excerpt=f.excerpt converted=f.converted/></td>
                </tr>
            }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// The findings browser's filters, shared with the report's links into it.
#[derive(Clone, Copy)]
struct Browse {
    code: RwSignal<String>,
    severity: RwSignal<String>,
    pages: RwSignal<Vec<Option<i64>>>,
    shown: RwSignal<bool>,
}

impl Default for Browse {
    fn default() -> Self {
        Browse {
            code: RwSignal::new(String::new()),
            severity: RwSignal::new(String::new()),
            pages: RwSignal::new(vec![None]),
            shown: RwSignal::new(false),
        }
    }
}

/// Brings an element of the page into view (after a click that opened it).
fn scroll_to(id: &'static str) {
    #[cfg(feature = "hydrate")]
    request_animation_frame(move || {
        if let Some(el) = document().get_element_by_id(id) {
            el.scroll_into_view();
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = id;
}

/// A "kept aside" count, a link to the errors that kept them aside.
fn kept_cell(n: i64, show: impl Fn(leptos::ev::MouseEvent) + 'static) -> AnyView {
    if n == 0 {
        return "0".into_any();
    }
    view! {
        <button type="button" class="linklike" data-testid="kept-aside" title="Show the errors that kept these aside" on:click=show>{count(n)}</button>
    }
    .into_any()
}

/// The line as it is in the user's file and, for a vendor format, the canonical record it
/// became (the message's field names are the canonical ones), on demand.
#[component]
fn LineSeen(excerpt: String, converted: Option<String>) -> impl IntoView {
    let line = (!excerpt.is_empty()).then(|| {
        let label = if converted.is_some() {
            "Your line"
        } else {
            "The line"
        };
        view! {
            <div class="line-seen" data-testid="finding-line">
                <span class="line-label">{label}</span>
                <pre class="excerpt">{excerpt}</pre>
            </div>
        }
    });
    let conv = converted.map(|c| {
        view! {
            <details class="converted" data-testid="finding-converted">
                <summary>"As imshift converted it (canonical record)"</summary>
                <pre class="excerpt">{c}</pre>
            </details>
        }
    });
    view! { {line}{conv} }.into_any()
}

/// Every finding, filtered by rule and severity, fifty at a time.
#[component]
fn FindingsBrowser(
    id: MigrationId,
    codes: Vec<String>,
    browse: Browse,
    kept_aside: i64,
) -> impl IntoView {
    let Browse {
        code,
        severity,
        pages,
        shown,
    } = browse;
    let filter = move || (code.get(), severity.get(), pages.get());
    let loaded = resource(
        move || (shown.get(), filter()),
        move |(shown, (code, severity, pages))| async move {
            if !shown {
                return Ok(vec![]);
            }
            let mut all = vec![];
            for after in pages {
                let page = dump_findings(
                    id,
                    (!code.is_empty()).then_some(code.clone()),
                    (!severity.is_empty()).then_some(severity.clone()),
                    after,
                )
                .await?;
                all.push(page);
            }
            Ok::<_, crate::model::ApiError>(all)
        },
    );
    view! {
        <div class="browser" id="all-findings-browser">
            {move || (!shown.get()).then(|| view! {
                <button class="btn" on:click=move |_| shown.set(true) data-testid="show-all-findings">"Browse every finding"</button>
            })}
            {move || shown.get().then(|| {
                let codes = codes.clone();
                view! {
                    <div class="filters">
                        <label>"Rule"
                            <select prop:value=move || code.get() on:change=move |ev| { code.set(event_target_value(&ev)); pages.set(vec![None]); }>
                                <option value="">"Every rule"</option>
                                {codes.into_iter().map(|c| view! { <option value=c.clone()>{c.clone()}</option> }).collect_view()}
                            </select>
                        </label>
                        <label>"Severity"
                            <select data-testid="findings-severity" prop:value=move || severity.get() on:change=move |ev| { severity.set(event_target_value(&ev)); pages.set(vec![None]); }>
                                <option value="">"Both"</option>
                                <option value="error">"Errors"</option>
                                <option value="warning">"Warnings"</option>
                            </select>
                        </label>
                    </div>
                    {move || (severity.get() == "error" && kept_aside > 0).then(|| view! {
                        <p class="hint" data-testid="errors-keep-aside">
                            {format!("These errors keep {} aside: ", plural(kept_aside, "record", "records"))}
                            <button type="button" class="linklike" on:click=move |_| scroll_to("report-counts")>"see Kept aside, by kind"</button>
                        </p>
                    })}
                    <Transition fallback=|| view! { <p>"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            match loaded.await {
                                Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                                Ok(pages_loaded) => {
                                    let next = pages_loaded.last().and_then(|p| p.next);
                                    let rows: Vec<FindingRow> = pages_loaded.into_iter().flat_map(|p| p.findings).collect();
                                    view! {
                                        <table class="table examples" data-testid="all-findings">
                                            <tbody>
                                            {rows.into_iter().map(|f| view! {
                                                <tr>
                                                    <td><span class=format!("sev sev-{}", f.severity)>{f.severity.clone()}</span></td>
                                                    <td><code>{f.code}</code></td>
                                                    <td class="nowrap where">{format!("{}:{}", f.file, f.line)}</td>
                                                    <td>{f.message}<LineSeen excerpt=f.excerpt converted=f.converted/></td>
                                                </tr>
                                            }).collect_view()}
                                            </tbody>
                                        </table>
                                        {next.map(|n| view! {
                                            <button class="btn" on:click=move |_| pages.update(|p| p.push(Some(n)))>"More"</button>
                                        })}
                                    }.into_any()
                                }
                            }
                        })}
                    </Transition>
                }
            })}
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn upload(state: UploadState, received_at: Option<time::OffsetDateTime>) -> Upload {
        Upload {
            id: uuid::Uuid::nil().into(),
            migration_id: uuid::Uuid::nil().into(),
            file_name: "dump.jsonl".into(),
            format: "auto".into(),
            format_label: "Tell from the content".into(),
            mode: "add".into(),
            size_bytes: 16 << 20,
            received_bytes: 0,
            state,
            read_bytes: 0,
            records: 0,
            rejected: 0,
            counts: Default::default(),
            error: None,
            files: vec![],
            created_by: None,
            created_at: datetime!(2026-12-02 12:00 UTC),
            ingest_started_at: None,
            ingest_finished_at: None,
            expires_at: None,
            received_at,
        }
    }

    #[test]
    fn an_upload_is_interrupted_only_after_a_quiet_while() {
        let last = datetime!(2026-12-02 12:00 UTC);
        let at = |secs: i64| (last.unix_timestamp() + secs) as f64 * 1000.0;
        let u = upload(UploadState::Uploading, Some(last));
        assert!(fed_recently(&u, at(5)), "a piece 5 s ago: still receiving");
        assert!(fed_recently(&u, at(119)));
        assert!(!fed_recently(&u, at(121)), "two minutes quiet: interrupted");
        assert_eq!(quiet_secs(&u, at(90)), Some(90.0));
        // Staged uploads and uploads with no time at all are never "receiving".
        assert!(!fed_recently(
            &upload(UploadState::Staged, Some(last)),
            at(5)
        ));
        assert!(!fed_recently(&upload(UploadState::Uploading, None), at(5)));
    }
}
