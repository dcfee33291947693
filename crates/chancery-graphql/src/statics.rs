//! Files built into the binary and served over plain HTTP: GraphiQL's here, the timeline page's in
//! the `chancery` crate. Every answer carries its `Content-Type`, `nosniff`, the site's
//! Content-Security-Policy, `Cache-Control: no-cache` and an `ETag` of the file's bytes, so that a
//! browser revalidates and a revalidation of an unchanged file costs a `304`. Nothing here knows
//! GraphQL.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One file built into the binary.
pub struct Asset {
    /// The name it is served by.
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// The quoted `ETag`, worked out on the first request for the file: hashing at compile time
    /// would take the compiler too long over GraphiQL's megabyte of script.
    etag: OnceLock<String>,
}

impl Asset {
    pub const fn new(
        name: &'static str,
        content_type: &'static str,
        bytes: &'static [u8],
    ) -> Asset {
        Asset {
            name,
            content_type,
            bytes,
            etag: OnceLock::new(),
        }
    }

    fn etag(&self) -> &str {
        self.etag
            .get_or_init(|| format!("\"{:016x}\"", fnv1a(self.bytes)))
    }
}

/// An [`Asset`] named `$name` from the folder `$dir` (relative to the file that says it, ending in
/// `/`), served as `$content_type`.
#[macro_export]
macro_rules! static_asset {
    ($dir:literal, $name:literal, $content_type:expr) => {
        $crate::statics::Asset::new($name, $content_type, include_bytes!(concat!($dir, $name)))
    };
}

/// 64-bit FNV-1a: a file's `ETag`, which changes with any of its bytes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// How one site serves its files: the headers that differ between sites.
pub struct Site {
    /// The Content-Security-Policy of every file.
    pub csp: &'static str,
    /// The Referrer-Policy, for a site whose links open other sites.
    pub referrer_policy: Option<&'static str>,
    /// The body of the `404` for a name the site does not serve.
    pub missing: &'static str,
}

impl Site {
    /// `asset`, or a `304` when the request's `If-None-Match` names its `ETag`.
    pub fn serve(&self, asset: &Asset, request: &HeaderMap) -> Response {
        let etag = asset.etag();
        let mut response = if matches_etag(request, etag) {
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
            HeaderValue::from_static(self.csp),
        );
        // Names carry no version: browsers revalidate, by the `ETag`.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Some(policy) = self.referrer_policy {
            h.insert(header::REFERRER_POLICY, HeaderValue::from_static(policy));
        }
        if let Ok(value) = HeaderValue::from_str(etag) {
            h.insert(header::ETAG, value);
        }
        response
    }

    /// The asset of `assets` named `name`, or a `404`.
    pub fn serve_named(&self, assets: &[Asset], name: &str, request: &HeaderMap) -> Response {
        match assets.iter().find(|a| a.name == name) {
            Some(asset) => self.serve(asset, request),
            None => {
                let mut response = (StatusCode::NOT_FOUND, self.missing).into_response();
                response.headers_mut().insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                response
            }
        }
    }
}

/// Whether the request's `If-None-Match` names `etag` (or any, `*`).
fn matches_etag(request: &HeaderMap, etag: &str) -> bool {
    request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: Site = Site {
        csp: "default-src 'none'",
        referrer_policy: None,
        missing: "no such file",
    };

    #[test]
    fn etag_changes_with_content() {
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn a_revalidation_of_an_unchanged_file_is_a_304() {
        static ASSETS: [Asset; 1] = [Asset::new("a.txt", "text/plain", b"hello")];
        let first = SITE.serve_named(&ASSETS, "a.txt", &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        let second = SITE.serve_named(&ASSETS, "a.txt", &again);
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(second.headers()[header::CONTENT_TYPE], "text/plain");
        let missing = SITE.serve_named(&ASSETS, "b.txt", &HeaderMap::new());
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
