//! A cuttable TCP forwarder for outage tests.

use std::net::SocketAddr;

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
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Self {
        let mut p = Self {
            port: 0,
            upstream,
            running: None,
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
        let (stop, upstream) = (CancellationToken::new(), self.upstream);
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
                    conns.spawn(async move {
                        if let Ok(mut up) = TcpStream::connect(upstream).await {
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
}
