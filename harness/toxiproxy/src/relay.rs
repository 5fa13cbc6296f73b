//! The client-facing hop of a proxy connection, and the reset_peer toxic that lives on it.
//!
//! noxious has no reset_peer toxic and keeps its sockets to itself, so each client connection is
//! relayed through this server to the noxious engine on a loopback port: here the client socket is
//! ours, and a reset can close it with SO_LINGER 0 (a TCP RST), as Toxiproxy's reset_peer does.

use crate::model::Stream;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;

const BUFFER_SIZE: usize = 32 * 1024;

/// One reset_peer toxic of a proxy.
#[derive(Clone, Debug, PartialEq)]
pub struct ResetRule {
    pub stream: Stream,
    pub timeout: Duration,
    pub toxicity: f32,
    /// Unique per version of the toxic: a connection draws its toxicity once per revision.
    pub revision: u64,
}

/// The reset_peer toxics of a proxy, shared by its connections and replaced on every change.
#[derive(Clone, Debug, Default)]
pub struct ResetRules(Arc<RwLock<Vec<ResetRule>>>);

impl ResetRules {
    pub fn replace(&self, rules: Vec<ResetRule>) {
        *self.0.write().expect("reset rules lock poisoned") = rules;
    }

    /// The delay before a reset if a rule on `stream` is active for this connection; `draws` holds
    /// the connection's toxicity draws so that one connection is either affected or not.
    fn triggered(&self, stream: Stream, draws: &mut HashMap<u64, bool>) -> Option<Duration> {
        let rules = self.0.read().expect("reset rules lock poisoned");
        rules
            .iter()
            .filter(|rule| rule.stream == stream)
            .find(|rule| {
                *draws
                    .entry(rule.revision)
                    .or_insert_with(|| rand::random::<f32>() < rule.toxicity)
            })
            .map(|rule| rule.timeout)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PumpEnd {
    Closed,
    Reset,
}

/// Resolves once the proxy is being stopped (or its controller is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Carries one client connection to the engine and back until either side closes, the proxy
/// stops, or a reset_peer toxic fires.
pub async fn relay(
    mut client: TcpStream,
    engine: SocketAddr,
    rules: ResetRules,
    mut stop: watch::Receiver<bool>,
) {
    let mut engine = match TcpStream::connect(engine).await {
        Ok(stream) => stream,
        Err(err) => {
            eprintln!("toxiproxy-server: cannot reach the proxy engine at {engine}: {err}");
            return;
        }
    };
    // Go, and so Toxiproxy, sets TCP_NODELAY on every connection; without it small writes of
    // request/response protocols can stall on Nagle's algorithm.
    let _ = client.set_nodelay(true);
    let _ = engine.set_nodelay(true);

    let end = {
        let (mut client_read, mut client_write) = client.split();
        let (mut engine_read, mut engine_write) = engine.split();
        let upstream = pump(
            &mut client_read,
            &mut engine_write,
            Stream::Upstream,
            &rules,
        );
        let downstream = pump(
            &mut engine_read,
            &mut client_write,
            Stream::Downstream,
            &rules,
        );
        tokio::pin!(upstream, downstream);
        let (mut upstream_open, mut downstream_open) = (true, true);
        loop {
            tokio::select! {
                end = &mut upstream, if upstream_open => {
                    if end == PumpEnd::Reset {
                        break PumpEnd::Reset;
                    }
                    upstream_open = false;
                }
                end = &mut downstream, if downstream_open => {
                    if end == PumpEnd::Reset {
                        break PumpEnd::Reset;
                    }
                    downstream_open = false;
                }
                () = stopped(&mut stop) => break PumpEnd::Closed,
            }
            if !upstream_open && !downstream_open {
                break PumpEnd::Closed;
            }
        }
    };
    if end == PumpEnd::Reset {
        // Dropping a socket with a zero linger time discards its buffers and sends RST.
        let _ = client.set_zero_linger();
        let _ = engine.set_zero_linger();
    }
}

/// Copies one direction. End of input is passed on as a half-close.
async fn pump(
    reader: &mut ReadHalf<'_>,
    writer: &mut WriteHalf<'_>,
    stream: Stream,
    rules: &ResetRules,
) -> PumpEnd {
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let mut draws = HashMap::new();
    loop {
        let count = match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(count) => count,
        };
        if let Some(delay) = rules.triggered(stream, &mut draws) {
            // As in Toxiproxy, data that meets a reset_peer toxic is dropped, not forwarded.
            tokio::time::sleep(delay).await;
            return PumpEnd::Reset;
        }
        if writer.write_all(&buffer[..count]).await.is_err() {
            break;
        }
    }
    let _ = writer.shutdown().await;
    PumpEnd::Closed
}
