//! One noxious engine with a fixed set of toxics, and the "legs" that carry connections through it.
//!
//! noxious 1.0.4 applies toxics faithfully to connections made after its start, but its live update
//! of existing connections is broken (`recreate_links` swaps the two directions, and the watcher of
//! the replaced links then drops the new ones from its table, so later changes never reach them).
//! So an engine here never changes: a toxic change starts a new generation, and each connection
//! moves to it over a fresh leg (see connection.rs). The engine's upstream is a loopback "sink" of
//! ours, so the real client and upstream sockets stay with us across the move.

use crate::model::{ToxicSpec, ToxicType};
use noxious::proxy::{ProxyConfig, ProxyRunner, Runner, Toxics};
use noxious::signal::{Close, Stop, Stopper};
use noxious::socket::TcpListener as EngineListener;
use noxious::toxic::{StreamDirection, Toxic, ToxicEvent, ToxicEventResult};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// How many loopback ports to try for an engine when another process takes the chosen one.
const ENGINE_BIND_ATTEMPTS: usize = 5;
/// How long the engine may take to pass a new leg on to the sink.
const LEG_PAIRING_TIMEOUT: Duration = Duration::from_secs(5);
/// Slack on top of the longest time a generation's toxics can hold data, for a move to drain.
const DRAIN_SLACK: Duration = Duration::from_millis(500);
const DRAIN_CAP: Duration = Duration::from_secs(20);

pub struct Generation {
    engine: SocketAddr,
    /// Accepts the engine's upstream connections; the lock pairs each with the leg that caused it.
    sink: Mutex<TcpListener>,
    toxics: Vec<Toxic>,
    drain_limit: Duration,
    stopper: Option<Stopper>,
}

/// A connection's path through one generation: we write the client's bytes into `client_end` and
/// read the upstream's from it; the engine's upstream side arrives at `upstream_end`.
pub struct Leg {
    pub client_end: TcpStream,
    pub upstream_end: TcpStream,
    /// Keeps the generation (and so its engine) alive while the leg is in use.
    pub generation: Arc<Generation>,
}

impl Generation {
    pub async fn start(name: &str, toxics: &[ToxicSpec]) -> io::Result<Arc<Generation>> {
        let engine_toxics: Vec<Toxic> = toxics.iter().filter_map(ToxicSpec::engine_toxic).collect();
        let sink = TcpListener::bind("127.0.0.1:0").await?;
        let sink_address = sink.local_addr()?;
        let mut initial = Toxics::empty();
        for toxic in &engine_toxics {
            match toxic.direction {
                StreamDirection::Upstream => initial.upstream.push(toxic.clone()),
                StreamDirection::Downstream => initial.downstream.push(toxic.clone()),
            }
        }
        let (listener, info, engine) = bind_engine(name, &sink_address.to_string(), initial).await?;
        // Toxic events are never sent (see the module comment); the receiver only has to exist.
        let (_events, event_receiver) = bmrng::channel::<ToxicEvent, ToxicEventResult>(1);
        let (stop, stopper) = Stop::new();
        let (_closed, closer) = Close::new();
        tokio::spawn(async move {
            let _ = ProxyRunner::run_proxy(listener, info, event_receiver, stop, closer).await;
        });
        Ok(Arc::new(Generation {
            engine,
            sink: Mutex::new(sink),
            drain_limit: drain_limit(toxics),
            toxics: engine_toxics,
            stopper: Some(stopper),
        }))
    }

    /// Whether this generation's engine already runs exactly these toxics.
    pub fn runs(&self, toxics: &[ToxicSpec]) -> bool {
        let wanted: Vec<Toxic> = toxics.iter().filter_map(ToxicSpec::engine_toxic).collect();
        wanted == self.toxics
    }

    /// The longest a move away from this generation waits for data its toxics still hold.
    pub fn drain_limit(&self) -> Duration {
        self.drain_limit
    }

    pub async fn open_leg(self: &Arc<Self>) -> io::Result<Leg> {
        let sink = self.sink.lock().await;
        let client_end = TcpStream::connect(self.engine).await?;
        let (upstream_end, _) = tokio::time::timeout(LEG_PAIRING_TIMEOUT, sink.accept())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the proxy engine did not connect on"))??;
        drop(sink);
        let _ = client_end.set_nodelay(true);
        let _ = upstream_end.set_nodelay(true);
        Ok(Leg {
            client_end,
            upstream_end,
            generation: Arc::clone(self),
        })
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if let Some(stopper) = self.stopper.take() {
            stopper.stop();
        }
    }
}

/// Latency and slicer toxics hold data (slicer at most one engine read buffer); the engine's other
/// toxics pass it on at once or drop it, and dropped data is never waited for beyond the slack.
fn drain_limit(toxics: &[ToxicSpec]) -> Duration {
    const ENGINE_CHUNK: u64 = 32 * 1024;
    let held: Duration = toxics
        .iter()
        .map(|toxic| match toxic.toxic_type {
            ToxicType::Latency { latency, jitter } => Duration::from_millis(latency.saturating_add(jitter)),
            ToxicType::Slicer {
                average_size, delay, ..
            } => Duration::from_micros((ENGINE_CHUNK / average_size.max(1)).saturating_mul(delay)),
            _ => Duration::ZERO,
        })
        .sum();
    (held + DRAIN_SLACK).min(DRAIN_CAP)
}

/// Binds an engine on a free loopback port. noxious does not report the port it bound, so a free
/// one is found first; another process could take it in between, hence the retries.
async fn bind_engine(
    name: &str,
    upstream: &str,
    toxics: Toxics,
) -> io::Result<(EngineListener, noxious::state::SharedProxyInfo, SocketAddr)> {
    let mut last_error = None;
    for _ in 0..ENGINE_BIND_ATTEMPTS {
        let address = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let config = ProxyConfig {
            name: name.to_owned(),
            listen: address.to_string(),
            upstream: upstream.to_owned(),
            enabled: true,
            rand_seed: None,
        };
        match ProxyRunner::initialize_proxy::<EngineListener>(config, toxics.clone()).await {
            Ok((listener, info)) => return Ok((listener, info, address)),
            Err(err) if err.kind() == io::ErrorKind::AddrInUse => last_error = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no loopback port for the proxy engine")))
}
