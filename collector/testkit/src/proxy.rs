//! A cuttable TCP forwarder for outage tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// A TCP forwarder that can be cut (listener and live connections closed) and restored on the
/// same port: an API server or backend outage for the client behind it. TLS passes through
/// untouched.
pub struct Proxy {
    /// Where clients connect (127.0.0.1).
    pub port: u16,
    upstream: SocketAddr,
    running: Option<(CancellationToken, JoinHandle<()>)>,
    /// Every connection accepted: when, and whether its upstream connect failed. What an outage
    /// test prints when a client is slow to come back (did it reach the proxy at all?).
    log: Arc<Mutex<Vec<(Instant, bool)>>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Self {
        let mut p = Self {
            port: 0,
            upstream,
            running: None,
            log: Arc::default(),
        };
        p.restore();
        p
    }

    /// Listens again on the same port (the first time, on a free one).
    pub fn restore(&mut self) {
        assert!(self.running.is_none(), "proxy is already up");
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], self.port)))
            .expect("the proxy's port is free again");
        let listener = socket.listen(64).unwrap();
        self.port = listener.local_addr().unwrap().port();
        let (stop, upstream, log) = (CancellationToken::new(), self.upstream, self.log.clone());
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut conns = JoinSet::new();
                loop {
                    let accepted = tokio::select! {
                        _ = stop.cancelled() => break,
                        a = listener.accept() => a,
                    };
                    let Ok((mut down, _)) = accepted else {
                        continue;
                    };
                    let (log, at) = (log.clone(), Instant::now());
                    conns.spawn(async move {
                        let up = TcpStream::connect(upstream).await;
                        log.lock().unwrap().push((at, up.is_err()));
                        if let Ok(mut up) = up {
                            let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                        }
                    });
                    while conns.try_join_next().is_some() {}
                }
                drop(listener);
                // Every live connection closes before cut() returns.
                conns.shutdown().await;
            }
        });
        self.running = Some((stop, task));
    }

    /// Closes the listener and every live connection; new connections are refused.
    pub async fn cut(&mut self) {
        let (stop, task) = self.running.take().expect("proxy is up");
        stop.cancel();
        task.await.unwrap();
    }

    /// The connections accepted since `t`, as offsets from it, each with whether its upstream
    /// connect failed.
    pub fn accepted_since(&self, t: Instant) -> Vec<(Duration, bool)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= t)
            .map(|(at, failed)| (*at - t, *failed))
            .collect()
    }
}
