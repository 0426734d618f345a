//! Runs an axum router on an ephemeral loopback port, in the background.

use std::net::SocketAddr;

/// A fake server on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct FakeServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Starts `router` on its own runtime thread (usable from sync tests and
    /// from async ones alike).
    pub fn start(router: axum::Router) -> FakeServer {
        Self::start_on(router, 0)
    }

    /// Starts `router` on a given loopback port (0 = any free port).
    pub fn start_on(router: axum::Router, port: u16) -> FakeServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fake server runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                        .await
                        .expect("bind loopback");
                    addr_tx
                        .send(listener.local_addr().expect("local addr"))
                        .ok();
                    axum::serve(listener, router)
                        .with_graceful_shutdown(async {
                            let _ = stop_rx.await;
                        })
                        .await
                        .expect("fake server");
                });
            })
            .expect("spawn fake server thread");
        let addr = addr_rx.recv().expect("fake server address");
        FakeServer {
            base_url: format!("http://{addr}"),
            addr,
            shutdown: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
