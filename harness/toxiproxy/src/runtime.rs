//! A started proxy: the public listener, its connections, and the current engine generation.

use crate::connection::{raised, serve, LocalToxics};
use crate::generation::Generation;
use crate::model::ToxicSpec;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Time on top of the old generation's drain limit for connections to finish moving.
const MOVE_SLACK: Duration = Duration::from_secs(1);
const MOVE_POLL: Duration = Duration::from_millis(2);

pub struct RunningProxy {
    name: String,
    listen: SocketAddr,
    stop: watch::Sender<bool>,
    acceptor: JoinHandle<()>,
    generations: watch::Sender<Arc<Generation>>,
}

impl RunningProxy {
    /// Binds `listen` and starts serving clients, each connected to `upstream` through an engine
    /// with these toxics.
    pub async fn start(
        name: &str,
        listen: &str,
        upstream: &str,
        toxics: &[ToxicSpec],
        local_toxics: LocalToxics,
    ) -> Result<RunningProxy, String> {
        // Worded as Go's errors are, since Toxiproxy passes those on in its 500 answers.
        let bind_error = |err: io::Error| format!("listen tcp {listen}: {err}");
        let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
        let listen_address = listener.local_addr().map_err(bind_error)?;
        let first = Generation::start(name, toxics)
            .await
            .map_err(|err| format!("cannot start the proxy engine: {err}"))?;
        let (generations, current) = watch::channel(first);
        let (stop, stopping) = watch::channel(false);
        let acceptor = tokio::spawn(accept_clients(
            listener,
            upstream.to_owned(),
            current,
            local_toxics,
            stopping,
        ));
        Ok(RunningProxy {
            name: name.to_owned(),
            listen: listen_address,
            stop,
            acceptor,
            generations,
        })
    }

    /// The address actually bound (a requested port 0 becomes the kernel's choice).
    pub fn listen_address(&self) -> SocketAddr {
        self.listen
    }

    /// Puts these toxics on every connection, open ones included; returns once the connections
    /// have moved to the new engine (or the old engine's drain limit has passed).
    pub async fn apply_toxics(&self, toxics: &[ToxicSpec]) -> Result<(), String> {
        if self.generations.borrow().runs(toxics) {
            return Ok(());
        }
        let next = Generation::start(&self.name, toxics)
            .await
            .map_err(|err| format!("cannot start the proxy engine: {err}"))?;
        let previous = self.generations.send_replace(next);
        // Each connection's leg holds the generation: when ours is the only reference left, every
        // connection has moved.
        let deadline = Instant::now() + previous.drain_limit() + MOVE_SLACK;
        while Arc::strong_count(&previous) > 1 && Instant::now() < deadline {
            tokio::time::sleep(MOVE_POLL).await;
        }
        Ok(())
    }

    /// Closes the listener and every connection, then the engine.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.acceptor.await;
    }
}

async fn accept_clients(
    listener: TcpListener,
    upstream: String,
    generations: watch::Receiver<Arc<Generation>>,
    local_toxics: LocalToxics,
    mut stopping: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(serve(
                        client,
                        upstream.clone(),
                        generations.clone(),
                        local_toxics.clone(),
                        stopping.clone(),
                    ));
                }
                Err(err) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    eprintln!("toxiproxy-server: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = raised(&mut stopping) => break,
        }
    }
    drop(listener);
    // Every connection sees the same stop flag; waiting for them means the client sockets are
    // closed when a disable or delete answers.
    while connections.join_next().await.is_some() {}
}
