//! The timeline page: `GET /` serves `assets/ui/index.html` and `GET /ui/{file}` the page's other
//! files (ES modules, the style sheet, the icon), all built into the binary with `include_bytes!`:
//! no CDN, nothing fetched at run time. Every answer carries its `Content-Type`, `nosniff`, a strict
//! Content-Security-Policy (same origin only, no inline script or style), `Cache-Control: no-cache`
//! and an `ETag` computed from the file's bytes at compile time, so a revalidation costs a `304`.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// FNV-1a of `bytes`, computed at compile time: the `ETag`.
    hash: u64,
}

/// 64-bit FNV-1a, usable in constants.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../assets/ui/", $name)),
            hash: fnv1a(include_bytes!(concat!("../assets/ui/", $name))),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

/// Everything `/ui/{file}` serves; any other name is a 404.
const ASSETS: &[Asset] = &[
    asset!("app.js", JS),
    asset!("gql.js", JS),
    asset!("live.js", JS),
    asset!("timeline.js", JS),
    asset!("views.js", JS),
    asset!("util.js", JS),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
];

/// Same origin only: scripts, styles and the icon from this server, `fetch` and the WebSocket
/// (`connect-src 'self'` covers `ws:`/`wss:` to the same host) to this server; no inline script
/// or style, no frames, no forms posting anywhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's routes, for any router state: `/` and `/ui/{file}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
        .route("/", get(index))
        .route("/ui/{file}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    respond(&INDEX, &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => respond(asset, &headers),
        None => {
            let mut response = (StatusCode::NOT_FOUND, "no such file\n").into_response();
            response.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
    }
}

fn respond(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.bytes.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Links to sources open other sites: tell them nothing of this server.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_files_are_not_empty() {
        let mut names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
        assert!(ASSETS.iter().chain([&INDEX]).all(|a| !a.bytes.is_empty()));
    }

    #[test]
    fn every_module_the_page_loads_is_served() {
        // index.html and the modules import only /ui/<name> files that this table serves.
        let texts = ASSETS
            .iter()
            .chain([&INDEX])
            .filter(|a| a.name.ends_with(".js") || a.name.ends_with(".html"))
            .map(|a| String::from_utf8_lossy(a.bytes).into_owned());
        for text in texts {
            for (i, _) in text.match_indices("/ui/") {
                let rest = &text[i + 4..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                    .collect();
                if name.is_empty() {
                    continue;
                }
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "/ui/{name} is referenced but not served"
                );
            }
            for host in ["http://", "https://", "//cdn", "unpkg", "jsdelivr"] {
                assert!(
                    !text.contains(&format!("src=\"{host}")),
                    "the page loads from another host"
                );
            }
        }
    }

    #[test]
    fn etag_changes_with_content() {
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
