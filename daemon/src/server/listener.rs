//! Accepting connections: the HTTP server's accept loop with its limits
//! (a header-read timeout that also ends idle kept-alive connections, and
//! a cap on open connections), and the accept-error backoff it shares with
//! the command socket ([`crate::cli::remote`]).
//!
//! Why not `axum::serve`: it sets no header-read timeout and accepts
//! without bound, so idle half-open connections could take every file
//! descriptor of the process (then the store, syncs and the command socket
//! fail too). Connections are served by hyper's HTTP/1 builder, whose
//! `header_read_timeout` does the timing.
//!
//! A request must also be handled whole, body included, within the same
//! time of its head's arrival, else it gets `408` and its connection closes
//! (a slow body would hold one of the capped connections).

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

/// Limits of the HTTP server (`[daemon] http_header_timeout_secs` and
/// `max_http_connections`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request head (request line and headers) must arrive within this
    /// time, counted from the connection's start or the end of its
    /// previous response; else the connection is closed.
    pub header_timeout: Duration,
    /// At most this many connections are open at once; more wait in the
    /// kernel's listen queue until one closes.
    pub max_connections: usize,
    /// The process's soft open-file limit (`RLIMIT_NOFILE`) the cap was
    /// checked against; `None` when unlimited. Logged at start.
    pub open_file_limit: Option<usize>,
}

impl Limits {
    /// The limits of `[daemon]`, the connection cap lowered to half of the
    /// process's open-file limit when that is smaller (logged), so the
    /// store, plugin hosts and the command socket keep descriptors.
    pub fn of(daemon: &crate::config::DaemonConfig) -> Limits {
        let configured = daemon.max_http_connections.max(1) as usize;
        let nofile = open_file_limit();
        let max_connections = match nofile {
            Some(nofile) if configured > nofile / 2 => {
                let lowered = (nofile / 2).max(1);
                tracing::warn!(
                    max_http_connections = configured,
                    open_file_limit = nofile,
                    using = lowered,
                    "`[daemon] max_http_connections` is more than half of the process's open-file limit (RLIMIT_NOFILE); using half of the limit so the store, syncs and commands keep file descriptors (raise the limit, e.g. `LimitNOFILE=` in the systemd unit, to allow more)"
                );
                lowered
            }
            _ => configured,
        };
        Limits {
            header_timeout: Duration::from_secs(daemon.http_header_timeout_secs.max(1)),
            max_connections,
            open_file_limit: nofile,
        }
    }
}

/// What a `listen` address that is not loopback exposes, and what to do
/// (`None` on loopback), given whether `[daemon] status_token` guards
/// `/status` and `/metrics`. `reckon config check` and `reckon run` warn
/// with it (security QA M3).
pub fn public_exposure(listen: std::net::SocketAddr, status_token: bool) -> Option<String> {
    let ip = listen.ip();
    let loopback = ip.is_loopback()
        || matches!(ip, std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()));
    let exposed = if status_token {
        "/status and /metrics require `status_token`, but plain HTTP carries it (and the postbacks' tokens) in clear, and anyone who can reach it can hold connections open"
    } else {
        "anyone who can reach it can read /status (config path, connectors, schedules, last errors) and /metrics without authentication (set `[daemon] status_token` to require a token), and hold connections open"
    };
    (!loopback).then(|| {
        format!(
            "`[daemon] listen` is {listen}, not a loopback address: {exposed}; keep `listen` on 127.0.0.1 and publish only /postback/* through a TLS reverse proxy (or firewall the port)"
        )
    })
}

/// The soft `RLIMIT_NOFILE` of this process, if it has one.
fn open_file_limit() -> Option<usize> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit.current.and_then(|n| usize::try_from(n).ok())
}

/// Serves `app` on `listener` within `limits` until `stop` turns true; then
/// stops accepting, lets each open connection finish its request in
/// progress (idle ones close at once) and returns when all have closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let app = with_request_timeout(app, limits.header_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut errors = AcceptErrors::new("HTTP server");
    let mut full = RateLimited::new(LOG_EVERY);
    let (closing_tx, closing) = watch::channel(false);
    let mut open = tokio::task::JoinSet::new();
    loop {
        if slots.available_permits() == 0 {
            if let Some(times) = full.hit(Instant::now()) {
                tracing::warn!(
                    max_http_connections = limits.max_connections,
                    times,
                    "all HTTP connections are in use; new ones wait until one closes (idle ones close after `http_header_timeout_secs`)"
                );
            }
        }
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = stopped(&mut stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => break,
        };
        match accepted {
            Ok((tcp, _)) => {
                errors.succeeded();
                open.spawn(connection(
                    tcp,
                    app.clone(),
                    limits.header_timeout,
                    closing.clone(),
                    slot,
                ));
            }
            Err(e) => {
                drop(slot);
                tokio::select! {
                    _ = errors.failed(&e) => {}
                    _ = stopped(&mut stop) => break,
                }
            }
        }
        while open.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = closing_tx.send(true);
    while open.join_next().await.is_some() {}
}

/// `app` answering `408 Request Timeout` to a request not handled within
/// `limit` of its head's arrival, body included (QA12: clients that sent a
/// head and then trickled their bodies held every capped connection, so
/// `/healthz` and postbacks timed out). The connection then closes, since
/// its body was not read to the end.
fn with_request_timeout(app: Router, limit: Duration) -> Router {
    use axum::response::IntoResponse;
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            match tokio::time::timeout(limit, next.run(req)).await {
                Ok(response) => response,
                Err(_) => (
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "request not received whole within {} s (`[daemon] http_header_timeout_secs`)\n",
                        limit.as_secs()
                    ),
                )
                    .into_response(),
            }
        },
    ))
}

/// Returns once `stop` is (or was) true, or its sender is gone.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}

/// Serves one connection, holding its `slot` until it closes.
async fn connection(
    tcp: tokio::net::TcpStream,
    app: Router,
    header_timeout: Duration,
    mut closing: watch::Receiver<bool>,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let tcp = WriteDeadline::new(tcp, header_timeout);
    let conn = builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stopped(&mut closing) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // A client that went away or sent a bad or late request head.
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

/// A connection whose writes fail once one has waited `limit` for the
/// client to read (QA28-E F11: a client that pipelined requests and never
/// read the answers held its connection, one of the capped slots, for
/// ever: hyper has a timeout for reading a request head, none for
/// writing). The wait restarts whenever the client takes bytes.
struct WriteDeadline<T> {
    inner: T,
    limit: Duration,
    waiting: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteDeadline<T> {
    fn new(inner: T, limit: Duration) -> Self {
        WriteDeadline {
            inner,
            limit,
            waiting: None,
        }
    }

    /// What a write-side poll of the inner stream gave: ready (the client
    /// took bytes, or an error) ends the wait; pending starts or checks it.
    fn settle<R>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<R>>,
    ) -> std::task::Poll<std::io::Result<R>> {
        if polled.is_ready() {
            self.waiting = None;
            return polled;
        }
        self.pending(cx)
    }

    /// `Pending` from the inner stream: starts or checks the wait.
    fn pending<R>(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<R>> {
        let limit = self.limit;
        let sleep = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing for {} s (`[daemon] http_header_timeout_secs`)",
                    limit.as_secs()
                ),
            ))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

use std::future::Future as _;
use tokio::io::{AsyncRead, AsyncWrite};

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.settle(cx, polled)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.settle(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.settle(cx, polled)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_shutdown(cx);
        self.settle(cx, polled)
    }
}

/// How often a repeated warning (accept errors, all connections in use) is
/// logged at most.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// The wait after the `failures`-th accept error in a row: 10 ms, doubling
/// up to 1 s. Out of file descriptors (`EMFILE`), accept fails at once
/// until some close; retrying at once would spin a core (and the log).
pub fn accept_backoff(failures: u32) -> Duration {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);
    let doublings = failures.saturating_sub(1).min(10);
    (FIRST * (1u32 << doublings)).min(MAX)
}

/// A log line allowed once per `every`: [`RateLimited::hit`] says when to
/// log and how many hits that line stands for.
#[derive(Debug)]
pub struct RateLimited {
    every: Duration,
    last: Option<Instant>,
    hits: u64,
}

impl RateLimited {
    pub fn new(every: Duration) -> RateLimited {
        RateLimited {
            every,
            last: None,
            hits: 0,
        }
    }

    /// Counts a hit at `now`; `Some(hits since the last line, this one
    /// included)` when a line is due (the first hit, then once per `every`).
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        self.hits += 1;
        match self.last {
            Some(last) if now.duration_since(last) < self.every => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.hits))
            }
        }
    }
}

/// Accept errors of one listener: backs off while they repeat and logs
/// them at most once a minute, with a count.
#[derive(Debug)]
pub struct AcceptErrors {
    listener: &'static str,
    in_a_row: u32,
    log: RateLimited,
}

impl AcceptErrors {
    /// For the listener named `listener` in the log.
    pub fn new(listener: &'static str) -> AcceptErrors {
        AcceptErrors {
            listener,
            in_a_row: 0,
            log: RateLimited::new(LOG_EVERY),
        }
    }

    /// An accept succeeded: the next error waits the shortest time again.
    pub fn succeeded(&mut self) {
        self.in_a_row = 0;
    }

    /// An accept failed with `e`: logs (rate-limited) and waits before the
    /// next accept. A connection that failed before it was accepted (reset,
    /// aborted) is the client's problem: no wait, no log.
    pub async fn failed(&mut self, e: &std::io::Error) {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
        if matches!(
            e.kind(),
            ConnectionAborted | ConnectionRefused | ConnectionReset
        ) {
            return;
        }
        self.in_a_row = self.in_a_row.saturating_add(1);
        let wait = accept_backoff(self.in_a_row);
        if let Some(errors) = self.log.hit(Instant::now()) {
            tracing::warn!(
                listener = self.listener,
                error = %e,
                errors,
                retry_in_ms = wait.as_millis() as u64,
                "accept failed (at most one such line a minute; `errors` counts them); out of file descriptors (`Too many open files`) means too many open connections or a low open-file limit"
            );
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_listen_address_is_quiet() {
        let warn = |a: &str| public_exposure(a.parse().unwrap(), false);
        assert_eq!(warn("127.0.0.1:9187"), None);
        assert_eq!(warn("[::1]:9187"), None);
        assert_eq!(warn("[::ffff:127.0.0.1]:9187"), None);
        for public in ["0.0.0.0:9187", "[::]:9187", "192.0.2.2:9187"] {
            let text = warn(public).expect(public);
            assert!(
                text.contains(&format!(
                    "`[daemon] listen` is {public}, not a loopback address"
                )) && text.contains("/status")
                    && text.contains("without authentication (set `[daemon] status_token`")
                    && text.contains("reverse proxy"),
                "{text}"
            );
        }
        // With a status token: what is left exposed (the token in clear).
        let text = public_exposure("0.0.0.0:9187".parse().unwrap(), true).unwrap();
        assert!(
            text.contains("/status and /metrics require `status_token`, but plain HTTP carries it")
                && !text.contains("without authentication"),
            "{text}"
        );
        assert_eq!(
            public_exposure("127.0.0.1:9187".parse().unwrap(), true),
            None
        );
    }

    #[test]
    fn accept_backoff_doubles_from_10ms_to_at_most_1s() {
        let ms = |n| accept_backoff(n).as_millis();
        assert_eq!(
            [ms(0), ms(1), ms(2), ms(3), ms(7), ms(8)],
            [10, 10, 20, 40, 640, 1000]
        );
        assert_eq!(accept_backoff(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn rate_limited_logs_the_first_hit_then_once_per_period_with_a_count() {
        let t0 = Instant::now();
        let mut log = RateLimited::new(Duration::from_secs(60));
        assert_eq!(log.hit(t0), Some(1));
        let hits: Vec<_> = (1..=1000)
            .map(|i| log.hit(t0 + Duration::from_millis(i * 50)))
            .collect();
        // 1000 hits in 50 s: none logged.
        assert!(hits.iter().all(Option::is_none));
        assert_eq!(log.hit(t0 + Duration::from_secs(60)), Some(1001));
        assert_eq!(log.hit(t0 + Duration::from_secs(61)), None);
    }

    /// Regression (security QA H3): out of file descriptors, the command
    /// socket's accept loop retried at once and logged every failure
    /// (15.9 million lines in 60 s). Now 100 failures in a row wait at
    /// least 10 ms each, then up to 1 s, and log one line.
    #[tokio::test(start_paused = true)]
    async fn repeated_accept_errors_back_off_and_log_once() {
        let mut errors = AcceptErrors::new("test");
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        let start = tokio::time::Instant::now();
        for _ in 0..100 {
            errors.failed(&emfile).await;
        }
        // 10+20+...+640 ms, then 93 × 1 s.
        assert_eq!(start.elapsed(), Duration::from_millis(1270 + 93_000));
        assert_eq!(errors.log.hits, 99, "one line logged, 99 counted since");
        // A reset connection neither waits nor counts.
        let start = tokio::time::Instant::now();
        errors
            .failed(&std::io::Error::from(std::io::ErrorKind::ConnectionReset))
            .await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        errors.succeeded();
        let start = tokio::time::Instant::now();
        errors.failed(&emfile).await;
        assert_eq!(start.elapsed(), Duration::from_millis(10));
    }
}
