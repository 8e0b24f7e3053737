//! `arpg serve`: a small, std-only HTTP/1.1 static file server for the browser app.
//!
//! * Binds to 127.0.0.1 only (never to a public interface).
//! * Serves `ROOT/www/` at `/` (`/` itself is `www/index.html`) and `ROOT/pkg/` (the wasm-bindgen
//!   output) at `/pkg/`. Nothing else under ROOT is reachable.
//! * GET and HEAD only; one request per connection (`Connection: close`); one thread per connection,
//!   with a cap on how many run at once.
//! * Refuses path traversal: `..`/`.` segments, dot-files, NUL, backslashes and malformed percent
//!   escapes, checked after percent-decoding; the file found must also canonicalize to a path inside
//!   `www/` or `pkg/`, so a symlink cannot lead out of them.
//! * Request line and header block are limited to 8 KiB each.
//! * A precompressed `FILE.br` or `FILE.gz` beside `FILE` (`make wasm` writes them for the runtime)
//!   answers with `Content-Encoding: br` or `gzip` when the request accepts it, brotli first, unless
//!   it is older than `FILE` (stale).
//!
//! Shutdown: no signal handler is installed on purpose. SIGTERM and Ctrl-C (SIGINT) keep their
//! default disposition and end the process at once; the server holds no state that needs flushing.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::Context;

/// Longest request line accepted (bytes, including CRLF).
const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Longest header block accepted (bytes, all header lines together, including CRLFs).
const MAX_HEADERS: usize = 8 * 1024;
/// Connections handled at once; more are answered 503 straight away.
const MAX_CONNECTIONS: usize = 64;
/// Read/write timeout on each connection, so a stalled client cannot hold a thread forever.
const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// Content-Security-Policy sent with every response. `'wasm-unsafe-eval'` is what lets the page
/// compile the wasm module; nothing else may be inlined or loaded from another origin.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; \
img-src 'self' blob: data:; style-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'";

/// Serve `root/www` and `root/pkg` on `http://127.0.0.1:port/` until the process is killed.
/// `port` 0 picks a free port; the line printed on stdout says which.
pub fn run(root: &Path, port: u16) -> anyhow::Result<()> {
    let listener = bind(port)?;
    let port = listener.local_addr().context("cannot read the bound address")?.port();
    println!("serving http://127.0.0.1:{port}/");
    io::stdout().flush().ok();
    serve(listener, root)
}

/// Bind the listening socket on 127.0.0.1 (loopback only).
pub fn bind(port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))
}

/// Accept connections on `listener` forever, one thread each, serving files below `root`.
pub fn serve(listener: TcpListener, root: &Path) -> anyhow::Result<()> {
    let root = root.canonicalize().with_context(|| format!("cannot open root {}", root.display()))?;
    let www = root.join("www");
    if !www.is_dir() {
        eprintln!("warning: {} is not a directory; every page will be 404", www.display());
    }
    let pkg = root.join("pkg");
    if !pkg.is_dir() {
        eprintln!("warning: {} is missing; build it with `make wasm`", pkg.display());
    }
    let root = Arc::new(root);
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                // E.g. out of file descriptors: back off instead of spinning.
                eprintln!("accept failed: {err}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let slot = Slot::take(&active);
        let Some(slot) = slot else {
            let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
            let _ = write_error(&mut stream, 503, false);
            continue;
        };
        let root = Arc::clone(&root);
        let spawned = thread::Builder::new().name("arpg-http".into()).spawn(move || {
            let _slot = slot;
            handle(stream, &root);
        });
        if let Err(err) = spawned {
            eprintln!("cannot start a connection thread: {err}");
        }
    }
    Ok(())
}

/// One of `MAX_CONNECTIONS` places; given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(active: &Arc<AtomicUsize>) -> Option<Slot> {
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(Arc::clone(active)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A parsed request: only what the server uses.
#[derive(Debug)]
struct Request {
    method: String,
    target: String,
    host: Option<String>,
    /// What `Accept-Encoding` allows among the precompressed files we look for.
    accepts: Accepts,
}

/// Content codings of precompressed files, in order of preference: (`Content-Encoding`, suffix).
const CODINGS: [(&str, &str); 2] = [("br", "br"), ("gzip", "gz")];

/// Which of [`CODINGS`] a request accepts (`Accept-Encoding`; `;q=0` refuses one).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Accepts([bool; CODINGS.len()]);

impl Accepts {
    fn parse(value: &str) -> Self {
        let mut accepts = Accepts::default();
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts
                .any(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()) == Some(0.0));
            if let Some(i) = CODINGS.iter().position(|(c, _)| c.eq_ignore_ascii_case(name)) {
                accepts.0[i] = !refused;
            }
        }
        accepts
    }
}

fn handle(stream: TcpStream, root: &Path) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    let result = match read_request(&mut reader) {
        Ok(Some(request)) => respond(&mut out, root, &request),
        Ok(None) => return, // connection closed before a request
        Err(status) => {
            eprintln!("- <malformed request> {status}");
            write_error(&mut out, status, false)
        }
    };
    if result.is_ok() {
        linger(out, reader);
    }
}

/// Close politely: stop sending, then drain what the client still sends, so that closing with
/// unread input does not reset the connection before the client has read the response.
fn linger(out: TcpStream, mut reader: BufReader<TcpStream>) {
    let _ = out.shutdown(Shutdown::Write);
    let _ = out.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = io::copy(&mut reader.by_ref().take(64 * 1024), &mut io::sink());
}

/// Read a line ending in LF of at most `limit` bytes (LF included). `Ok(None)` on a clean EOF.
fn read_line<R: BufRead>(reader: &mut R, limit: usize) -> Result<Option<Vec<u8>>, LineError> {
    let mut buf = Vec::new();
    let n = reader.take(limit as u64 + 1).read_until(b'\n', &mut buf).map_err(|_| LineError::Io)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > limit {
        return Err(LineError::TooLong);
    }
    if buf.last() != Some(&b'\n') {
        return Err(LineError::Io); // EOF in the middle of a line
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(buf))
}

enum LineError {
    TooLong,
    Io,
}

/// Parse the request line and headers. `Err(status)` for a request to refuse with that status.
fn read_request<R: BufRead>(reader: &mut R) -> Result<Option<Request>, u16> {
    // RFC 9112 §2.2: ignore at least one empty line before the request line.
    let mut line = Vec::new();
    for _ in 0..4 {
        match read_line(reader, MAX_REQUEST_LINE) {
            Ok(None) => return Ok(None),
            Ok(Some(l)) if l.is_empty() => continue,
            Ok(Some(l)) => {
                line = l;
                break;
            }
            Err(LineError::TooLong) => return Err(414),
            Err(LineError::Io) => return Ok(None),
        }
    }
    let line = String::from_utf8(line).map_err(|_| 400u16)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) || target.is_empty() {
        return Err(400);
    }
    match version {
        "HTTP/1.1" | "HTTP/1.0" => {}
        v if v.starts_with("HTTP/") => return Err(505),
        _ => return Err(400),
    }

    let (mut host, mut accepts) = (None, Accepts::default());
    let mut budget = MAX_HEADERS;
    loop {
        let header = match read_line(reader, budget) {
            Ok(Some(h)) => h,
            Ok(None) | Err(LineError::Io) => return Err(400),
            Err(LineError::TooLong) => return Err(431),
        };
        budget = budget.saturating_sub(header.len() + 2);
        if header.is_empty() {
            break;
        }
        if budget == 0 {
            return Err(431);
        }
        let header = String::from_utf8(header).map_err(|_| 400u16)?;
        let (name, value) = header.split_once(':').ok_or(400u16)?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err(400);
        }
        if name.eq_ignore_ascii_case("host") {
            host = Some(value.trim().to_string());
        } else if name.eq_ignore_ascii_case("accept-encoding") {
            accepts = Accepts::parse(value);
        }
    }
    Ok(Some(Request { method: method.to_string(), target: target.to_string(), host, accepts }))
}

/// Whether a `Host` header names this loopback server (guards against DNS rebinding).
fn host_allowed(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1"
}

fn respond(out: &mut TcpStream, root: &Path, request: &Request) -> io::Result<()> {
    let head_only = request.method == "HEAD";
    let status = match answer(root, request) {
        Ok((path, file, len, coding)) => {
            let encoding = coding.map(|c| format!("Content-Encoding: {c}"));
            let extra: Vec<&str> = encoding.iter().map(String::as_str).collect();
            write_head(out, 200, mime_for(&path), len, &extra)?;
            if !head_only {
                io::copy(&mut file.take(len), out)?;
            }
            out.flush()?;
            200
        }
        Err(status) => {
            write_error(out, status, head_only)?;
            status
        }
    };
    eprintln!("{} {} {status}", request.method, request.target.escape_debug());
    Ok(())
}

/// What [`answer`] finds: the file's path, the file to send and its length, and its content coding
/// when it is a precompressed copy.
type Answer = (PathBuf, File, u64, Option<&'static str>);

/// Find the file a request asks for, or the error status to answer with. `make wasm` writes
/// FILE.br / FILE.gz copies of the runtime; any fresh copy beside a file is sent instead of it
/// when the client accepts its coding.
fn answer(root: &Path, request: &Request) -> Result<Answer, u16> {
    if request.method != "GET" && request.method != "HEAD" {
        return Err(405);
    }
    if let Some(host) = &request.host
        && !host_allowed(host)
    {
        return Err(400);
    }
    let resolved = resolve(root, &request.target)?;
    // Defence in depth: the real path must stay inside the base folder (no symlink escapes).
    let base = resolved.base.canonicalize().map_err(|_| 404u16)?;
    let mut path = resolved.path.canonicalize().map_err(|_| 404u16)?;
    if path.is_dir() {
        path = path.join("index.html").canonicalize().map_err(|_| 404u16)?;
    }
    if !path.starts_with(&base) {
        return Err(404);
    }
    let open = |p: &Path| -> Option<(File, std::fs::Metadata)> {
        let file = File::open(p).ok()?;
        let meta = file.metadata().ok()?;
        meta.is_file().then_some((file, meta))
    };
    let (file, meta) = open(&path).ok_or(404u16)?;
    // A precompressed copy older than its file is stale (the file was replaced since): skip it.
    let fresh = |packed: &std::fs::Metadata| match (packed.modified(), meta.modified()) {
        (Ok(packed), Ok(original)) => packed >= original,
        _ => false,
    };
    for (&(coding, suffix), _) in CODINGS.iter().zip(request.accepts.0).filter(|(_, ok)| *ok) {
        let packed = path.with_added_extension(suffix).canonicalize().ok();
        let packed = packed.filter(|p| p.starts_with(&base)).as_deref().and_then(open);
        if let Some((packed, packed_meta)) = packed.filter(|(_, m)| fresh(m)) {
            return Ok((path, packed, packed_meta.len(), Some(coding)));
        }
    }
    Ok((path, file, meta.len(), None))
}

/// Where a request target maps to: `base` is `ROOT/www` or `ROOT/pkg`, `path` is inside it.
#[derive(Debug, PartialEq, Eq)]
struct Resolved {
    base: PathBuf,
    path: PathBuf,
}

/// Map a request target to a file path, purely lexically (no file-system access).
/// `Err(400)` for a malformed target, `Err(404)` for one that tries to leave the served folders.
fn resolve(root: &Path, target: &str) -> Result<Resolved, u16> {
    if !target.starts_with('/') {
        return Err(400); // absolute-form (`http://…`), `*`, or garbage
    }
    let raw = target.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(raw).ok_or(400u16)?;
    if decoded.contains(['\0', '\\']) || decoded.chars().any(char::is_control) {
        return Err(400);
    }
    let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    for segment in &segments {
        // `..`, `.` and dot-files (`.git`, `.env`, …) are never served.
        if segment.starts_with('.') {
            return Err(404);
        }
        let mut components = Path::new(segment).components();
        if !matches!((components.next(), components.next()), (Some(Component::Normal(_)), None)) {
            return Err(404);
        }
    }
    let (base, rest) = match segments.split_first() {
        Some((&"pkg", rest)) => (root.join("pkg"), rest),
        _ => (root.join("www"), &segments[..]),
    };
    let mut path = base.clone();
    path.extend(rest);
    if rest.is_empty() || decoded.ends_with('/') {
        path.push("index.html");
    }
    Ok(Resolved { base, path })
}

/// Decode `%XX` escapes; `None` if an escape is malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Content-Type for a file, from its extension.
fn mime_for(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        "arpg" => "application/octet-stream",
        _ => "application/octet-stream",
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    }
}

fn write_head(
    out: &mut impl Write,
    status: u16,
    content_type: &str,
    len: u64,
    extra: &[&str],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\n\
         Content-Type: {content_type}\r\n\
         Content-Length: {len}\r\n\
         Content-Security-Policy: {CSP}\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Cache-Control: no-cache\r\n\
         Vary: Accept-Encoding\r\n\
         Cross-Origin-Opener-Policy: same-origin\r\n\
         Connection: close\r\n",
        reason(status)
    );
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

fn write_error(out: &mut impl Write, status: u16, head_only: bool) -> io::Result<()> {
    let body = format!("{status} {}\n", reason(status));
    let extra: &[&str] = if status == 405 { &["Allow: GET, HEAD"] } else { &[] };
    write_head(out, status, "text/plain; charset=utf-8", body.len() as u64, extra)?;
    if !head_only {
        out.write_all(body.as_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn ok(target: &str) -> PathBuf {
        let r = resolve(Path::new("/srv"), target).unwrap_or_else(|s| panic!("{target}: {s}"));
        assert!(r.path.starts_with(&r.base), "{target}: {r:?}");
        r.path
    }

    #[test]
    fn resolves_root_www_and_pkg() {
        assert_eq!(ok("/"), Path::new("/srv/www/index.html"));
        assert_eq!(ok("/index.html"), Path::new("/srv/www/index.html"));
        assert_eq!(ok("/app.js"), Path::new("/srv/www/app.js"));
        assert_eq!(ok("/img/a%20b.png"), Path::new("/srv/www/img/a b.png"));
        assert_eq!(ok("/sub/"), Path::new("/srv/www/sub/index.html"));
        assert_eq!(ok("/pkg/arpg.js"), Path::new("/srv/pkg/arpg.js"));
        assert_eq!(ok("/pkg/arpg_bg.wasm?v=3#x"), Path::new("/srv/pkg/arpg_bg.wasm"));
        assert_eq!(ok("/pkgx/a.js"), Path::new("/srv/www/pkgx/a.js"));
        // Repeated slashes collapse; they cannot make the path absolute.
        assert_eq!(ok("//etc/passwd"), Path::new("/srv/www/etc/passwd"));
        assert_eq!(ok("/pkg//arpg.js"), Path::new("/srv/pkg/arpg.js"));
    }

    #[test]
    fn refuses_traversal_and_malformed_targets() {
        let refused = [
            ("/../Cargo.toml", 404),
            ("/pkg/../Cargo.toml", 404),
            ("/%2e%2e/Cargo.toml", 404),
            ("/%2E%2E%2FCargo.toml", 404),
            ("/pkg/..%2f..%2fetc/passwd", 404),
            ("/./index.html", 404),
            ("/.git/config", 404),
            ("/pkg/.gitignore", 404),
            ("/a%00b", 400),
            ("/a\0b", 400),
            ("/..%5cCargo.toml", 400),
            ("/a%0ab", 400),
            ("/%zz", 400),
            ("/%2", 400),
            ("/%+f", 400),
            ("/%ff", 400), // not UTF-8
            ("index.html", 400),
            ("http://evil.example/index.html", 400),
            ("*", 400),
        ];
        for (target, status) in refused {
            assert_eq!(resolve(Path::new("/srv"), target), Err(status), "{target}");
        }
    }

    #[test]
    fn mime_types() {
        let cases = [
            ("index.html", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("worker.mjs", "text/javascript; charset=utf-8"),
            ("arpg_bg.wasm", "application/wasm"),
            ("meta.json", "application/json"),
            ("icon.PNG", "image/png"),
            ("style.css", "text/css; charset=utf-8"),
            ("logo.svg", "image/svg+xml"),
            ("app.webmanifest", "application/manifest+json"),
            ("model.arpg", "application/octet-stream"),
            ("noext", "application/octet-stream"),
        ];
        for (name, mime) in cases {
            assert_eq!(mime_for(Path::new(name)), mime, "{name}");
        }
    }

    #[test]
    fn host_header_check() {
        assert!(host_allowed("127.0.0.1:8080"));
        assert!(host_allowed("localhost"));
        assert!(host_allowed("LOCALHOST:1"));
        assert!(!host_allowed("evil.example:8080"));
        assert!(!host_allowed("127.0.0.1.evil.example"));
    }

    /// A scratch site: ROOT/{www/index.html, www/app.js, pkg/arpg.js, Cargo.toml}.
    fn scratch_root() -> PathBuf {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let root = std::env::temp_dir().join(format!("arpg-serve-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(root.join("www")).unwrap();
        std::fs::create_dir_all(root.join("pkg")).unwrap();
        std::fs::write(root.join("www/index.html"), "<!doctype html><p>hello arpg</p>\n").unwrap();
        std::fs::write(root.join("pkg/arpg.js"), "export default 1;\n").unwrap();
        std::fs::write(root.join("Cargo.toml"), "SECRET-CARGO\n").unwrap();
        root
    }

    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
    }

    fn send(addr: SocketAddr, raw: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(raw).unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("no end of head");
        let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        Reply { status, headers, body: bytes[split + 4..].to_vec() }
    }

    fn get(addr: SocketAddr, method: &str, target: &str) -> Reply {
        let raw = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", addr.port());
        send(addr, raw.as_bytes())
    }

    #[test]
    fn serves_over_tcp() {
        let root = scratch_root();
        let listener = bind(0).unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let served = root.clone();
        thread::spawn(move || serve(listener, &served));

        let r = get(addr, "GET", "/");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Security-Policy"), Some(CSP));
        assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(r.header("Cache-Control"), Some("no-cache"));
        assert_eq!(r.header("Cross-Origin-Opener-Policy"), Some("same-origin"));
        assert_eq!(r.body, b"<!doctype html><p>hello arpg</p>\n");
        assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string().as_str()));

        let r = get(addr, "GET", "/pkg/arpg.js");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some("text/javascript; charset=utf-8"));
        assert_eq!(r.body, b"export default 1;\n");
        assert_eq!(r.header("Content-Encoding"), None);
        assert_eq!(r.header("Vary"), Some("Accept-Encoding"));

        // A precompressed FILE.gz answers for FILE when the client accepts gzip, and only then.
        std::fs::write(root.join("pkg/arpg.js.gz"), b"GZ-BYTES").unwrap();
        let raw = format!(
            "GET /pkg/arpg.js HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept-Encoding: br, gzip;q=0.9\r\n\r\n",
            addr.port()
        );
        let r = send(addr, raw.as_bytes());
        assert_eq!((r.status, r.body.as_slice()), (200, b"GZ-BYTES".as_slice()));
        assert_eq!(r.header("Content-Encoding"), Some("gzip"));
        assert_eq!(r.header("Content-Type"), Some("text/javascript; charset=utf-8"));
        assert_eq!(get(addr, "GET", "/pkg/arpg.js").body, b"export default 1;\n");

        // FILE.br is preferred when brotli is accepted, and never sent when it is refused.
        std::fs::write(root.join("pkg/arpg.js.br"), b"BR-BYTES").unwrap();
        let with = |accept: &str| {
            let raw = format!(
                "GET /pkg/arpg.js HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept-Encoding: {accept}\r\n\r\n",
                addr.port()
            );
            let r = send(addr, raw.as_bytes());
            (String::from_utf8(r.body.clone()).unwrap(), r.header("Content-Encoding").map(str::to_string))
        };
        assert_eq!(with("gzip, deflate, br, zstd"), ("BR-BYTES".into(), Some("br".into())));
        assert_eq!(with("gzip, br;q=0"), ("GZ-BYTES".into(), Some("gzip".into())));
        assert_eq!(with("br;q=0, gzip;q=0"), ("export default 1;\n".into(), None));
        assert_eq!(with("identity"), ("export default 1;\n".into(), None));
        // A copy older than its file (the file was replaced after it was made) is never sent.
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        for stale in ["pkg/arpg.js.br", "pkg/arpg.js.gz"] {
            File::options().write(true).open(root.join(stale)).unwrap().set_modified(old).unwrap();
        }
        assert_eq!(with("gzip, br"), ("export default 1;\n".into(), None));

        for target in ["/../Cargo.toml", "/%2e%2e/Cargo.toml", "/pkg/../../Cargo.toml", "/Cargo.toml"] {
            let r = get(addr, "GET", target);
            assert!(matches!(r.status, 400 | 404), "{target}: {}", r.status);
            assert!(!String::from_utf8_lossy(&r.body).contains("SECRET"), "{target}");
            assert_eq!(r.header("Content-Security-Policy"), Some(CSP));
        }

        let r = get(addr, "HEAD", "/");
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
        assert_eq!(r.header("Content-Length"), Some("33"));

        let r = get(addr, "POST", "/");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));

        assert_eq!(get(addr, "GET", "/missing.js").status, 404);
        assert_eq!(send(addr, b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n").status, 400);
        assert_eq!(send(addr, b"GET / HTTP/2.0\r\n\r\n").status, 505);
        assert_eq!(send(addr, b"nonsense\r\n\r\n").status, 400);

        let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE));
        assert_eq!(send(addr, long_line.as_bytes()).status, 414);
        let big_headers = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(MAX_HEADERS));
        assert_eq!(send(addr, big_headers.as_bytes()).status, 431);
        let many_headers = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(MAX_HEADERS / 8 + 1));
        assert_eq!(send(addr, many_headers.as_bytes()).status, 431);

        std::fs::remove_dir_all(&root).ok();
    }
}
