//! `arpg-serve`: the browser app's static file server.
//!
//! * Binds to 127.0.0.1 only. `--port 0` picks a free port; the first line on stdout says which
//!   (`serving http://127.0.0.1:PORT/`).
//! * Serves `ROOT/www/` at `/` (`/` is `www/index.html`) and `ROOT/pkg/` (the wasm-bindgen output)
//!   at `/pkg/`. Nothing else under ROOT is reachable: tower-http's `ServeDir` refuses `..` and
//!   backslashes; [`refusal`] refuses dot-files (`.git`, `.env`, ...), NUL and control characters,
//!   malformed percent escapes and absolute-form targets; and a file whose real path (symlinks
//!   resolved) leaves its folder is not found.
//! * GET and HEAD only. A `Host` other than this machine's loopback names is refused (DNS
//!   rebinding).
//! * HTTP/1.1 with keep-alive, by hyper. A client has `header_timeout` to send each request head,
//!   also while it idles between requests: an idle connection costs one task until then and is
//!   never counted against real ones. A head is at most [`MAX_HEAD`] bytes.
//! * `FILE.br` / `FILE.gz` beside a file (`make wasm` writes them for the runtime) answer for it
//!   when the request accepts that coding, brotli first, unless it is older than the file (stale).
//! * `Last-Modified` on every file; a GET whose `If-Modified-Since` matches gets 304 and no body.
//! * Every response carries [`CSP`], `X-Content-Type-Options: nosniff`, `Cache-Control: no-cache`
//!   (revalidate each time: the 304 makes that cheap), `Cross-Origin-Opener-Policy: same-origin`
//!   and `Vary: Accept-Encoding`.

use std::convert::Infallible;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::http::uri::PathAndQuery;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::services::ServeDir;
use tower_http::services::fs::ServeFileSystemResponseBody;

/// Content-Security-Policy sent with every response. `'wasm-unsafe-eval'` is what lets the page
/// compile the wasm module; nothing else may be inlined or loaded from another origin.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; \
img-src 'self' blob: data:; style-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'";

/// Largest request head (request line and headers) hyper buffers; a longer one is refused.
pub const MAX_HEAD: usize = 16 * 1024;

/// How long a client may take to send a request head (also between keep-alive requests).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(15);

type Body = Either<ServeFileSystemResponseBody, Full<Bytes>>;

/// Bind the listening socket on 127.0.0.1 (loopback only); port 0 picks a free one.
pub async fn bind(port: u16) -> io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await
}

/// Serve `root/www` and `root/pkg` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, root: &Path, header_timeout: Duration) -> io::Result<()> {
    let site = Arc::new(Site::new(root)?);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // E.g. out of file descriptors: back off instead of spinning.
                eprintln!("accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let site = Arc::clone(&site);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let site = Arc::clone(&site);
                async move { Ok::<_, Infallible>(site.answer(request).await) }
            });
            // A client that goes away or times out ends its connection; nothing to report.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The two served folders, as given and with symlinks resolved.
struct Site {
    www: Folder,
    pkg: Folder,
}

struct Folder {
    path: PathBuf,
    real: Option<PathBuf>,
}

impl Folder {
    fn new(path: PathBuf, missing: &str) -> Self {
        let real = path.canonicalize().ok();
        if real.is_none() {
            eprintln!("warning: {} is missing; {missing}", path.display());
        }
        Folder { path, real }
    }
}

impl Site {
    fn new(root: &Path) -> io::Result<Self> {
        let root = root.canonicalize()?;
        Ok(Site {
            www: Folder::new(root.join("www"), "every page will be 404"),
            pkg: Folder::new(root.join("pkg"), "build it with `make wasm`"),
        })
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<Body> {
        let line = format!("{} {}", request.method(), request.uri());
        let mut response = match refusal(&request) {
            Some(status) => plain(status),
            None => self.file(request).await,
        };
        let headers = response.headers_mut();
        for (name, value) in [
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::VARY, "Accept-Encoding"),
            (header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        eprintln!("{} {}", line.escape_debug(), response.status().as_u16());
        response
    }

    /// The file a checked request names, through `ServeDir` on its folder.
    async fn file(&self, mut request: Request<Incoming>) -> Response<Body> {
        let path = request.uri().path().to_string();
        let (folder, rest) = match path.strip_prefix("/pkg") {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => (&self.pkg, rest),
            _ => (&self.www, path.as_str()),
        };
        let Some(file) = folder.real.as_deref().and_then(|real| real_file(real, rest)) else {
            return plain(StatusCode::NOT_FOUND);
        };
        let mut files = ServeDir::new(&folder.path);
        if fresh_copy(&file, "br") {
            files = files.precompressed_br();
        }
        if fresh_copy(&file, "gz") {
            files = files.precompressed_gzip();
        }
        let query = request.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
        let within = if rest.is_empty() { "/" } else { rest };
        // Only the path changes, to one the checks above already accepted.
        *request.uri_mut() =
            Uri::from(PathAndQuery::try_from(format!("{within}{query}")).expect("a valid path"));
        let Ok(response) = files.oneshot(request).await;
        response.map(Either::Left)
    }
}

/// Why a request is refused before any file is looked at, or `None`.
fn refusal(request: &Request<Incoming>) -> Option<StatusCode> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Some(StatusCode::METHOD_NOT_ALLOWED);
    }
    let host = request.headers().get(header::HOST).map(|h| h.to_str().unwrap_or_default());
    if host.is_some_and(|h| !host_allowed(h)) {
        return Some(StatusCode::BAD_REQUEST);
    }
    let path = request.uri().path();
    if request.uri().authority().is_some() || !path.starts_with('/') || !escapes_well_formed(path) {
        return Some(StatusCode::BAD_REQUEST); // absolute-form, `*`, or a broken `%` escape
    }
    let Ok(decoded) = percent_encoding::percent_decode_str(path).decode_utf8() else {
        return Some(StatusCode::BAD_REQUEST);
    };
    if decoded.chars().any(|c| c.is_control() || c == '\\') {
        return Some(StatusCode::BAD_REQUEST);
    }
    // `..`, `.` and dot-files (`.git`, `.env`, ...) are never served.
    if decoded.split('/').any(|segment| segment.starts_with('.')) {
        return Some(StatusCode::NOT_FOUND);
    }
    None
}

/// Whether a `Host` header names this loopback server (guards against DNS rebinding).
pub fn host_allowed(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1"
}

/// Every `%` starts a two-hex-digit escape.
fn escapes_well_formed(path: &str) -> bool {
    let b = path.as_bytes();
    let hex = |i: usize| b.get(i).is_some_and(u8::is_ascii_hexdigit);
    (0..b.len()).all(|i| b[i] != b'%' || (hex(i + 1) && hex(i + 2)))
}

/// The real path of the file `rest` (a checked URI path) names under the folder `real`, or
/// `None` when there is none or it resolves outside the folder (a symlink leading out).
fn real_file(real: &Path, rest: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(rest).decode_utf8().ok()?;
    let mut path = real.to_path_buf();
    path.extend(decoded.split('/').filter(|s| !s.is_empty()));
    if path.is_dir() {
        path.push("index.html");
    }
    let path = path.canonicalize().ok()?;
    path.starts_with(real).then_some(path)
}

/// Whether `FILE.suffix` exists inside the same folder and is not older than `FILE`.
fn fresh_copy(file: &Path, suffix: &str) -> bool {
    let copy = file.with_added_extension(suffix);
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let inside = copy.canonicalize().is_ok_and(|c| file.parent().is_some_and(|dir| c.starts_with(dir)));
    inside && matches!((modified(&copy), modified(file)), (Some(c), Some(f)) if c >= f)
}

/// A short plain-text response: "404 Not Found".
fn plain(status: StatusCode) -> Response<Body> {
    let text = format!("{} {}\n", status.as_u16(), status.canonical_reason().unwrap_or_default());
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(text))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_check() {
        assert!(host_allowed("127.0.0.1:8080"));
        assert!(host_allowed("localhost"));
        assert!(host_allowed("LOCALHOST:1"));
        assert!(!host_allowed("evil.example:8080"));
        assert!(!host_allowed("127.0.0.1.evil.example"));
    }

    #[test]
    fn percent_escapes_need_two_hex_digits() {
        for ok in ["/", "/a%20b", "/%2e%2E", "/x%41"] {
            assert!(escapes_well_formed(ok), "{ok}");
        }
        for bad in ["/%zz", "/%2", "/%+f", "/a%", "/%g0"] {
            assert!(!escapes_well_formed(bad), "{bad}");
        }
    }
}
