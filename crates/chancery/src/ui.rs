//! The timeline page: `GET /` serves `assets/ui/index.html` and `GET /ui/{file}` the page's other
//! files (ES modules, the style sheet, the icon), all built into the binary with `include_bytes!`:
//! no CDN, nothing fetched at run time. Every answer carries its `Content-Type`, `nosniff`, a strict
//! Content-Security-Policy (same origin only, no inline script or style), `Cache-Control: no-cache`
//! and an `ETag` of the file's bytes, so a revalidation costs a `304`
//! ([`chancery_graphql::statics`] serves them).

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use chancery_graphql::static_asset;
use chancery_graphql::statics::{Asset, Site};

const JS: &str = "text/javascript; charset=utf-8";

static INDEX: Asset = static_asset!("../assets/ui/", "index.html", "text/html; charset=utf-8");

/// Everything `/ui/{file}` serves; any other name is a 404.
static ASSETS: [Asset; 10] = [
    static_asset!("../assets/ui/", "app.js", JS),
    static_asset!("../assets/ui/", "gql.js", JS),
    static_asset!("../assets/ui/", "live.js", JS),
    static_asset!("../assets/ui/", "timeline.js", JS),
    static_asset!("../assets/ui/", "views.js", JS),
    static_asset!("../assets/ui/", "util.js", JS),
    static_asset!("../assets/ui/", "publish.js", JS),
    static_asset!("../assets/ui/", "workbench.js", JS),
    static_asset!("../assets/ui/", "style.css", "text/css; charset=utf-8"),
    static_asset!("../assets/ui/", "icon.svg", "image/svg+xml"),
];

/// Same origin only: scripts, styles and the icon from this server, `fetch` and the WebSocket
/// (`connect-src 'self'` covers `ws:`/`wss:` to the same host) to this server; no inline script
/// or style, no frames, no forms posting anywhere. Images also from `blob:`: the PNG of the
/// timeline is drawn from an SVG the page makes. Links to sources open other sites: they are told
/// nothing of this server.
const PAGE: Site = Site {
    csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    referrer_policy: Some("no-referrer"),
    missing: "no such file\n",
};

/// The page's routes, for any router state: `/` and `/ui/{file}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
        .route("/", get(index))
        .route("/ui/{file}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    PAGE.serve(&INDEX, &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    PAGE.serve_named(&ASSETS, &name, &headers)
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
}
