//! Serving an axum router to the open internet: the accept loop every public server of the
//! subnet (miner, dev chain RPC, validator dashboard) runs, with the limits that keep it up.
//!
//! `axum::serve` sets no header-read timeout (hyper needs a timer for one) and takes every
//! connection it is offered, so 1,100 idle sockets exhausted a 1,024-descriptor limit and
//! slowloris sockets were never closed. Here:
//! - a connection that has not sent a complete request head within
//!   [`ServeLimits::header_read_timeout`] is closed (idle sockets, slowloris, and idle keep-alive
//!   connections between requests);
//! - at most [`ServeLimits::max_connections`] connections are open at once and at most
//!   [`ServeLimits::max_connections_per_ip`] from one address; a connection over either cap is
//!   closed as soon as it is accepted, and counted in `http_connections_refused_total`;
//! - a failed `accept` (e.g. out of descriptors) pauses the loop briefly instead of spinning;
//! - [`raise_fd_limit`] lifts the soft descriptor limit to the hard one at start-up;
//! - handlers see the peer address as axum's `ConnectInfo<SocketAddr>`;
//! - on shutdown the listener closes, in-flight requests finish (up to
//!   [`ServeLimits::drain_timeout`]), and the loop returns.
//!
//! Bodies are bounded elsewhere: by each router's body limit, and by btauth, which authorizes a
//! caller before reading its body.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Resolves on Ctrl-C (SIGINT) or SIGTERM: the shutdown every long-running command of the
/// subnet (miner, validator, dashboard, dev chain node) waits for. A signal that cannot be
/// listened for is logged and never fires.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Time a connection gets to send a complete request head (also between keep-alive requests).
    pub header_read_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_ip: usize,
    /// Time in-flight requests get to finish at shutdown.
    pub drain_timeout: Duration,
}

impl Default for ServeLimits {
    /// 10 s for a request head, 768 connections, 64 per address, 30 s to drain.
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 768,
            max_connections_per_ip: 64,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Raises the soft limit on open file descriptors to the hard limit (a server at 1,024 runs out
/// long before its connection cap); returns the new soft limit. Errors are logged, not fatal.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(%error, "could not raise the open-file limit");
            return getrlimit(Resource::Nofile).current;
        }
    }
    limit.current
}

/// Connections open per IP address.
#[derive(Debug, Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PerIp`]; freed on drop.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut table = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let open = table.entry(ip).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(IpSlot {
            table: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut table = self
            .table
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(open) = table.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                table.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` resolves (HTTP/1.1).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp::default());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or memory: back off instead of spinning; the limits
                    // and timeouts free connections.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            refused("max_connections");
            continue;
        };
        let Some(slot) = per_ip.acquire(peer.ip(), limits.max_connections_per_ip) else {
            refused("max_connections_per_ip");
            continue;
        };
        let service =
            router
                .clone()
                .map_request(move |request: http::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?limits.drain_timeout, "connections still open after the drain timeout; closing them");
    }
    Ok(())
}

fn refused(limit: &'static str) {
    metrics::counter!("http_connections_refused_total", "limit" => limit).increment(1);
    tracing::debug!(limit, "connection refused");
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::net::SocketAddr;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn start(limits: ServeLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, limits, async {
            let _ = rx.await;
        }));
        (addr, tx)
    }

    /// `GET /peer` on a fresh connection; the body, or `None` when the connection was closed.
    async fn get_peer(addr: SocketAddr) -> Option<String> {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /peer HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut out = String::new();
        stream.read_to_string(&mut out).await.ok()?;
        out.split("\r\n\r\n").nth(1).map(str::to_owned)
    }

    /// Waits until the server closes `stream` (read returns 0 or fails); how long that took.
    async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let mut buf = [0u8; 64];
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => Some(started.elapsed()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn idle_and_slowloris_sockets_are_closed_and_the_server_still_answers() {
        let limits = ServeLimits {
            header_read_timeout: Duration::from_millis(400),
            ..ServeLimits::default()
        };
        let (addr, _stop) = start(limits).await;
        let mut idle = Vec::new();
        for _ in 0..20 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        // A slowloris client: a request head that never ends, a byte at a time.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /peer HTTP/1.1\r\nx-slow: ")
            .await
            .unwrap();
        let trickle = tokio::spawn(async move {
            for _ in 0..20 {
                if slow.write_all(b"a").await.is_err() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut buf = [0u8; 8];
            matches!(slow.read(&mut buf).await, Ok(0) | Err(_))
        });
        assert_eq!(get_peer(addr).await.as_deref(), Some("127.0.0.1"));
        for stream in &mut idle {
            let took = closed_within(stream, Duration::from_secs(5)).await;
            assert!(took.is_some(), "an idle socket stays open");
        }
        assert!(trickle.await.unwrap(), "the slowloris socket was closed");
        assert_eq!(get_peer(addr).await.as_deref(), Some("127.0.0.1"));
    }

    #[tokio::test]
    async fn connections_over_the_caps_are_closed_at_once_and_freed_slots_are_reused() {
        let limits = ServeLimits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: 8,
            max_connections_per_ip: 3,
            ..ServeLimits::default()
        };
        let (addr, _stop) = start(limits).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        // The fourth from the same address is closed right away, long before any timeout.
        let mut fourth = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(&mut fourth, Duration::from_secs(2))
                .await
                .is_some()
        );
        assert_eq!(get_peer(addr).await, None, "the per-address cap is full");
        // The held ones still work, and closing one frees its slot.
        held.pop();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get_peer(addr).await.as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn the_fd_limit_is_raised_to_the_hard_limit() {
        let raised = raise_fd_limit().expect("a soft limit");
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(Some(raised), limit.current);
        assert_eq!(limit.current, limit.maximum);
    }
}
