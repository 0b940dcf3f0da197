//! What only the browser does: HTTP requests with upload progress (XMLHttpRequest, since fetch
//! reports none), sending a file in resumable pieces, and a timer. Compiled for `hydrate` only.

use js_sys::Promise;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, File, ProgressEvent, XmlHttpRequest};

/// Bytes per request when sending a file: large enough to keep the line busy, small enough
/// that an interruption loses little.
pub const PIECE: f64 = 8.0 * 1024.0 * 1024.0;

pub enum Body<'a> {
    Empty,
    Json(&'a str),
    Blob(&'a Blob),
}

/// The status and body of a finished request; `Err` when it never got an answer.
pub async fn request(
    method: &str,
    url: &str,
    body: Body<'_>,
    on_progress: Option<Box<dyn FnMut(f64)>>,
) -> Result<(u16, String), String> {
    let xhr = XmlHttpRequest::new().map_err(|e| format!("{e:?}"))?;
    xhr.open_with_async(method, url, true)
        .map_err(|e| format!("{e:?}"))?;
    if let Body::Json(_) = body {
        let _ = xhr.set_request_header("content-type", "application/json");
    }
    let progress = on_progress.map(|mut f| {
        Closure::<dyn FnMut(ProgressEvent)>::new(move |e: ProgressEvent| f(e.loaded()))
    });
    if let (Some(p), Ok(up)) = (&progress, xhr.upload()) {
        up.set_onprogress(Some(p.as_ref().unchecked_ref()));
    }
    let done = Promise::new(&mut |resolve, reject| {
        xhr.set_onload(Some(
            Closure::once_into_js(move || {
                let _ = resolve.call0(&JsValue::NULL);
            })
            .unchecked_ref(),
        ));
        let failed = |reject: &js_sys::Function| {
            let reject = reject.clone();
            Closure::once_into_js(move || {
                let _ = reject.call1(&JsValue::NULL, &JsValue::from_str("network"));
            })
        };
        xhr.set_onerror(Some(failed(&reject).unchecked_ref()));
        xhr.set_onabort(Some(failed(&reject).unchecked_ref()));
    });
    let sent = match body {
        Body::Empty => xhr.send(),
        Body::Json(s) => xhr.send_with_opt_str(Some(s)),
        Body::Blob(b) => xhr.send_with_opt_blob(Some(b)),
    };
    sent.map_err(|e| format!("{e:?}"))?;
    let outcome = JsFuture::from(done).await;
    drop(progress);
    outcome.map_err(|_| "the connection to the console broke off".to_string())?;
    Ok((
        xhr.status().unwrap_or(0),
        xhr.response_text().ok().flatten().unwrap_or_default(),
    ))
}

/// The sentence of an API error body, or the status.
pub fn error_message(status: u16, body: &str) -> String {
    serde_json::from_slice::<serde_json::Value>(body.as_bytes())
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("the console answered {status}"))
}

pub async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(p).await;
}

pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Sends `file` from `offset` to an upload in pieces. `sent(total)` hears every progress
/// event. A piece that fails is sent again (the server says where to continue); after five
/// failures in a row the error is returned and the upload can be resumed later.
pub async fn send_file(
    upload_url: &str,
    file: &File,
    mut offset: f64,
    sent: impl Fn(f64) + Clone + 'static,
) -> Result<(), String> {
    let size = file.size();
    let mut failures = 0;
    while offset < size {
        let end = (offset + PIECE).min(size);
        let piece = file
            .slice_with_f64_and_f64(offset, end)
            .map_err(|e| format!("{e:?}"))?;
        let base = offset;
        let report = sent.clone();
        let url = format!("{upload_url}?offset={}", offset as u64);
        match request(
            "PUT",
            &url,
            Body::Blob(&piece),
            Some(Box::new(move |loaded| report(base + loaded))),
        )
        .await
        {
            Ok((200, _)) => {
                offset = end;
                failures = 0;
                sent(offset);
                continue;
            }
            Ok((409, body)) if body.contains("send the rest from offset") => {}
            Ok((status, body)) if status != 0 && status < 500 => {
                return Err(error_message(status, &body))
            }
            Ok((status, body)) => {
                failures += 1;
                if failures >= 5 {
                    return Err(error_message(status, &body));
                }
            }
            Err(e) => {
                failures += 1;
                if failures >= 5 {
                    return Err(e);
                }
            }
        }
        // Ask the server where it got to, then go on from there.
        sleep(500 * failures.max(1)).await;
        if let Ok((200, body)) = request("GET", upload_url, Body::Empty, None).await {
            if let Some(n) = serde_json::from_slice::<serde_json::Value>(body.as_bytes())
                .ok()
                .and_then(|v| v["received_bytes"].as_f64())
            {
                offset = n;
            }
        }
    }
    Ok(())
}
