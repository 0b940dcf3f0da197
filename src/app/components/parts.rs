use crate::model::ApiError;
use leptos::prelude::*;
use time::OffsetDateTime;

pub use super::layout::can;

/// `2026-11-22 14:05 UTC`
pub fn when(t: &OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", ymd(&t), t.hour(), t.minute())
}

// The three layouts below are written with `format!` rather than time's formatter: its generic
// format-description interpreter would be compiled into the WASM for them alone.

/// `2026-11-22`, as time's `[year]-[month]-[day]` writes it.
fn ymd(t: &OffsetDateTime) -> String {
    let (y, m, d) = (t.year(), t.month() as u8, t.day());
    let sign = match y {
        ..0 => "-",
        10000.. => "+",
        _ => "",
    };
    format!("{sign}{:04}-{m:02}-{d:02}", y.unsigned_abs())
}

/// The outcome of a server action: the error's sentence, or nothing.
pub fn action_error<T: Clone + Send + Sync + 'static>(
    value: impl Get<Value = Option<Result<T, ApiError>>> + Send + Sync + 'static,
) -> impl IntoView {
    move || {
        value.get().and_then(Result::err).map(|e| {
            view! { <p class="alert alert-error" role="alert">{e.message}</p> }
        })
    }
}

#[component]
pub fn ErrorNote(error: ApiError) -> impl IntoView {
    view! { <p class="alert alert-error" role="alert">{error.message}</p> }
}

#[component]
pub fn EmptyState(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <div class="empty">
            <h3>{title}</h3>
            <div class="empty-body">{children()}</div>
        </div>
    }
    .into_any()
}

#[component]
pub fn PageHeader(title: &'static str, #[prop(optional)] subtitle: &'static str) -> impl IntoView {
    view! {
        <leptos_meta::Title text=title/>
        <div class="page-header">
            <h1>{title}</h1>
            {(!subtitle.is_empty()).then(|| view! { <p class="subtitle">{subtitle}</p> })}
        </div>
    }
    .into_any()
}

/// A secret or link shown once, with a button to copy it.
#[component]
pub fn CopyOnce(
    #[prop(into)] label: String,
    value: String,
    #[prop(optional)] testid: &'static str,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let v = value.clone();
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            if let Some(w) = web_sys::window() {
                let _ = w.navigator().clipboard().write_text(&v);
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &v;
        copied.set(true);
    };
    view! {
        <div class="copy-once">
            <div class="copy-label" data-testid=format!("{testid}-label")>{label}</div>
            <div class="copy-row">
                <input type="text" readonly value=value.clone() data-testid=testid on:focus=|ev| {
                    #[cfg(feature = "hydrate")]
                    {
                        use leptos::wasm_bindgen::JsCast;
                        if let Some(t) = ev.target() {
                            if let Ok(i) = t.dyn_into::<web_sys::HtmlInputElement>() { i.select(); }
                        }
                    }
                    #[cfg(not(feature = "hydrate"))]
                    let _ = ev;
                }/>
                <button type="button" class="btn" on:click=copy>
                    {move || if copied.get() { "Copied" } else { "Copy" }}
                </button>
            </div>
            <p class="hint">"It is shown only now: copy it before leaving this page."</p>
        </div>
    }
    .into_any()
}

/// `1.5 MB`
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n.max(0) as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{} B", n.max(0))
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `3 h 05 min`, `4 min 10 s`, `12 s`
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// `1,234,567`: every count a page shows, grouped by thousands.
pub fn count(n: i64) -> String {
    crate::model::thousands(n)
}

/// `1 line`, `2 lines`, `12,000 lines`: a count with its noun agreeing.
pub fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// `2026-11-22 14:05:09 UTC`: to the second (the audit log's times).
pub fn when_secs(t: &OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (h, m, s) = (t.hour(), t.minute(), t.second());
    format!("{} {h:02}:{m:02}:{s:02} UTC", ymd(&t))
}

/// `2026-11-22T14:05:09.123456Z (UTC)`: the whole timestamp, for a hover title.
pub fn when_full(t: &OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    // RFC 3339 has four-digit years only (time's formatter refuses others: nothing is shown).
    if !(0..=9999).contains(&t.year()) {
        return " (UTC)".to_string();
    }
    // A fraction only when there is one, without trailing zeros, as time writes RFC 3339.
    let fraction = match t.nanosecond() {
        0 => String::new(),
        ns => format!(".{ns:09}").trim_end_matches('0').to_string(),
    };
    let (h, m, s) = (t.hour(), t.minute(), t.second());
    format!("{}T{h:02}:{m:02}:{s:02}{fraction}Z (UTC)", ymd(&t))
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators_and_nouns_agree() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(-12345), "-12,345");
        assert_eq!(plural(1, "line", "lines"), "1 line");
        assert_eq!(plural(0, "line", "lines"), "0 lines");
        assert_eq!(plural(25000, "record", "records"), "25,000 records");
    }

    #[test]
    fn times_to_the_second_and_in_full() {
        let t = time::macros::datetime!(2026-11-22 14:05:09.5 +01:00);
        assert_eq!(when_secs(&t), "2026-11-22 13:05:09 UTC");
        assert_eq!(when_full(&t), "2026-11-22T13:05:09.5Z (UTC)");
    }

    #[test]
    fn times_read_as_times_formatter_writes_them() {
        use time::format_description::well_known::Rfc3339;
        let minutes = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
        let seconds =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
        for t in [
            time::macros::datetime!(2026-01-02 03:04:05 UTC),
            time::macros::datetime!(2026-12-31 23:59:59.999999999 -08:00),
            time::macros::datetime!(0999-07-08 09:10:11.000123 +05:30),
            time::macros::datetime!(1970-01-01 00:00:00.1 UTC),
            time::macros::datetime!(9999-12-31 23:59:59 UTC),
        ] {
            let utc = t.to_offset(time::UtcOffset::UTC);
            assert_eq!(when(&t), utc.format(&minutes).unwrap());
            assert_eq!(when_secs(&t), utc.format(&seconds).unwrap());
            assert_eq!(
                when_full(&t),
                format!("{} (UTC)", utc.format(&Rfc3339).unwrap())
            );
        }
    }
}
