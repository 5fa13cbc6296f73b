//! One client connection. The client and upstream sockets are ours; between them the bytes run
//! through a leg of the current engine generation, and move to a leg of the next generation when
//! the toxics change, after the old leg has delivered what it held. The reset_peer and bandwidth
//! toxics are applied here, on the real sockets' side of the leg.

use crate::generation::{Generation, Leg};
use crate::model::Stream;
use socket2::SockRef;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

const BUFFER_SIZE: usize = 16 * 1024;
/// How often a move checks whether the old leg has delivered everything.
const DRAIN_POLL: Duration = Duration::from_millis(2);

/// What a toxic applied here, rather than in the engine, does to a chunk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LocalEffect {
    /// Drop the chunk, wait, then reset the connection (noxious has no reset_peer).
    ResetPeer { timeout: Duration },
    /// Pass the chunk at this many KB/s (noxious' bandwidth toxic panics on chunks larger than
    /// rate × 100 bytes).
    Bandwidth { rate: u64 },
}

/// One toxic of a proxy that this server applies itself.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalToxic {
    pub stream: Stream,
    pub effect: LocalEffect,
    pub toxicity: f32,
    /// Unique per version of the toxic: a connection draws its toxicity once per revision.
    pub revision: u64,
}

/// The local toxics of a proxy, shared by its connections and replaced on every change.
#[derive(Clone, Debug, Default)]
pub struct LocalToxics(Arc<RwLock<Vec<LocalToxic>>>);

/// A connection's toxicity draws by toxic revision, so that a toxic affects a connection or not
/// for the connection's whole life (until the toxic changes).
type Draws = Mutex<HashMap<u64, bool>>;

/// The local toxics in force on one chunk.
#[derive(Debug, Default)]
struct Effects {
    reset_after: Option<Duration>,
    /// KB/s, that is bytes per millisecond; several bandwidth toxics add up their delays.
    rates: Vec<u64>,
}

impl LocalToxics {
    pub fn replace(&self, toxics: Vec<LocalToxic>) {
        *self.0.write().expect("local toxics lock poisoned") = toxics;
    }

    fn effects(&self, stream: Stream, draws: &Draws) -> Effects {
        let toxics = self.0.read().expect("local toxics lock poisoned");
        let mut draws = draws.lock().expect("toxicity draws lock poisoned");
        let mut effects = Effects::default();
        for toxic in toxics.iter().filter(|toxic| toxic.stream == stream) {
            let active = *draws
                .entry(toxic.revision)
                .or_insert_with(|| rand::random::<f32>() < toxic.toxicity);
            match toxic.effect {
                _ if !active => {}
                LocalEffect::ResetPeer { timeout } => {
                    effects.reset_after.get_or_insert(timeout);
                }
                // Rate 0 means no limit, as in Toxiproxy.
                LocalEffect::Bandwidth { rate: 0 } => {}
                LocalEffect::Bandwidth { rate } => effects.rates.push(rate),
            }
        }
        effects
    }
}

/// Resolves once the flag turns true (or its sender is gone).
pub async fn raised(flag: &mut watch::Receiver<bool>) {
    while !*flag.borrow_and_update() {
        if flag.changed().await.is_err() {
            return;
        }
    }
}

/// Serves one accepted client until it, the upstream or the engine closes, a reset_peer toxic
/// fires, or the proxy stops.
pub async fn serve(
    mut client: TcpStream,
    upstream_address: String,
    mut generations: watch::Receiver<Arc<Generation>>,
    toxics: LocalToxics,
    mut stop: watch::Receiver<bool>,
) {
    // As Toxiproxy does, the upstream connection is made when the client arrives.
    let connected = tokio::select! {
        connected = TcpStream::connect(upstream_address.as_str()) => connected,
        () = raised(&mut stop) => return,
    };
    let mut upstream = match connected {
        Ok(upstream) => upstream,
        Err(err) => {
            eprintln!("toxiproxy-server: cannot connect to upstream {upstream_address}: {err}");
            return;
        }
    };
    // Go, and so Toxiproxy, sets TCP_NODELAY on every connection; without it small writes of
    // request/response protocols can stall on Nagle's algorithm.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let draws = Draws::default();
    loop {
        let generation = generations.borrow_and_update().clone();
        let leg = match generation.open_leg().await {
            Ok(leg) => leg,
            Err(err) => {
                eprintln!("toxiproxy-server: cannot open a path through the proxy engine: {err}");
                return;
            }
        };
        drop(generation);
        let end = run_leg(
            &mut client,
            &mut upstream,
            leg,
            &toxics,
            &draws,
            &mut generations,
            &mut stop,
        )
        .await;
        match end {
            LegEnd::Moved => continue,
            LegEnd::Closed => return,
            LegEnd::Reset => {
                // Dropping a socket with a zero linger time discards its buffers and sends RST;
                // Toxiproxy's reset_peer resets both of its connections.
                let _ = client.set_zero_linger();
                let _ = upstream.set_zero_linger();
                return;
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LegEnd {
    /// The toxics changed and the old leg is drained: continue on a new one.
    Moved,
    Closed,
    Reset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PumpEnd {
    /// The source ended; the end was passed on as a shutdown of the destination.
    Eof,
    /// Writing to the destination failed.
    Failed,
    /// Stopped between two chunks because the connection is moving.
    Paused,
    Reset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Relaying,
    /// Waiting for the pumps into the engine to stop between chunks.
    PausingInput,
    /// Waiting until the engine has passed on all it was given, or the generation's drain limit.
    Draining,
    /// Waiting for the pumps out of the engine to stop between chunks.
    PausingOutput,
}

/// Relays through one leg. Pumps: 0 client→engine, 1 engine→upstream, 2 upstream→engine,
/// 3 engine→client; 0 and 2 feed the engine, 1 and 3 take its output.
async fn run_leg(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    mut leg: Leg,
    toxics: &LocalToxics,
    draws: &Draws,
    generations: &mut watch::Receiver<Arc<Generation>>,
    stop: &mut watch::Receiver<bool>,
) -> LegEnd {
    let drain_limit = leg.generation.drain_limit();
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();
    let (mut engine_read, mut engine_write) = leg.client_end.split();
    let (mut sink_read, mut sink_write) = leg.upstream_end.split();
    let (pause_input, input_paused) = watch::channel(false);
    let (pause_output, output_paused) = watch::channel(false);
    // Bytes into the engine and out of it, per direction (upstream, downstream).
    let fed = [AtomicU64::new(0), AtomicU64::new(0)];
    let delivered = [AtomicU64::new(0), AtomicU64::new(0)];
    let upstream_toxics = LocalCheck {
        stream: Stream::Upstream,
        toxics,
        draws,
    };
    let downstream_toxics = LocalCheck {
        stream: Stream::Downstream,
        toxics,
        draws,
    };

    let client_to_engine = pump(
        &mut client_read,
        &mut engine_write,
        &fed[0],
        Source::Peer(Some(&upstream_toxics)),
        input_paused.clone(),
    );
    let engine_to_upstream = pump(
        &mut sink_read,
        &mut upstream_write,
        &delivered[0],
        Source::Engine(None),
        output_paused.clone(),
    );
    let upstream_to_engine = pump(
        &mut upstream_read,
        &mut sink_write,
        &fed[1],
        Source::Peer(None),
        input_paused,
    );
    let engine_to_client = pump(
        &mut engine_read,
        &mut client_write,
        &delivered[1],
        Source::Engine(Some(&downstream_toxics)),
        output_paused,
    );
    tokio::pin!(
        client_to_engine,
        engine_to_upstream,
        upstream_to_engine,
        engine_to_client
    );

    let mut ended: [Option<PumpEnd>; 4] = [None; 4];
    let mut phase = Phase::Relaying;
    let mut drain_deadline = Instant::now();
    loop {
        tokio::select! {
            end = &mut client_to_engine, if ended[0].is_none() => ended[0] = Some(end),
            end = &mut engine_to_upstream, if ended[1].is_none() => ended[1] = Some(end),
            end = &mut upstream_to_engine, if ended[2].is_none() => ended[2] = Some(end),
            end = &mut engine_to_client, if ended[3].is_none() => ended[3] = Some(end),
            changed = generations.changed(), if phase == Phase::Relaying => {
                if changed.is_err() {
                    return LegEnd::Closed;
                }
                let _ = pause_input.send(true);
                phase = Phase::PausingInput;
                drain_deadline = Instant::now() + drain_limit;
            }
            () = tokio::time::sleep(DRAIN_POLL), if phase != Phase::Relaying => {}
            () = raised(stop) => return LegEnd::Closed,
        }

        if ended.contains(&Some(PumpEnd::Reset)) {
            return LegEnd::Reset;
        }
        // A real peer that cannot be written to ends the connection.
        if ended[1] == Some(PumpEnd::Failed) || ended[3] == Some(PumpEnd::Failed) {
            return LegEnd::Closed;
        }
        let output_ended = ended[1].is_some() && ended[3].is_some();
        if output_ended && (ended[1] == Some(PumpEnd::Eof) || ended[3] == Some(PumpEnd::Eof)) {
            // The engine closed the leg (a toxic such as timeout or limit_data, or a peer's close
            // passed through it).
            return LegEnd::Closed;
        }
        match phase {
            Phase::PausingInput if ended[0].is_some() && ended[2].is_some() => phase = Phase::Draining,
            Phase::Draining => {
                let drained = (0..2).all(|direction| {
                    delivered[direction].load(Ordering::Relaxed) >= fed[direction].load(Ordering::Relaxed)
                });
                if drained || Instant::now() >= drain_deadline {
                    let _ = pause_output.send(true);
                    phase = Phase::PausingOutput;
                }
            }
            Phase::PausingOutput if output_ended => return LegEnd::Moved,
            _ => {}
        }
    }
}

struct LocalCheck<'a> {
    stream: Stream,
    toxics: &'a LocalToxics,
    draws: &'a Draws,
}

/// Where a pump reads from, with the local toxics that apply to what it reads.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The real client or upstream.
    Peer(Option<&'a LocalCheck<'a>>),
    /// One of the engine's two sides.
    Engine(Option<&'a LocalCheck<'a>>),
}

/// Copies one direction chunk by chunk. A pause is taken only between chunks, so that no chunk is
/// half written when the connection moves to a new leg.
async fn pump(
    reader: &mut ReadHalf<'_>,
    writer: &mut WriteHalf<'_>,
    moved: &AtomicU64,
    source: Source<'_>,
    mut pause: watch::Receiver<bool>,
) -> PumpEnd {
    let mut buffer = vec![0u8; BUFFER_SIZE];
    loop {
        let count = tokio::select! {
            biased;
            () = raised(&mut pause) => return PumpEnd::Paused,
            read = reader.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(count) => count,
            },
        };
        let local = match source {
            Source::Peer(local) => local,
            Source::Engine(local) => {
                // noxious' sockets lack TCP_NODELAY: its second small write waits for our ACK of
                // the first, and a delayed ACK stalls it for tens of milliseconds. Quick ACKs
                // (a mode the kernel leaves again, hence after every read) keep that wait short.
                let _ = SockRef::from(reader.as_ref()).set_tcp_quickack(true);
                local
            }
        };
        let effects = match local {
            Some(check) => check.toxics.effects(check.stream, check.draws),
            None => Effects::default(),
        };
        if let Some(delay) = effects.reset_after {
            // As in Toxiproxy, data that meets a reset_peer toxic is dropped, not forwarded.
            tokio::time::sleep(delay).await;
            return PumpEnd::Reset;
        }
        if write_throttled(writer, &buffer[..count], &effects.rates)
            .await
            .is_err()
        {
            return PumpEnd::Failed;
        }
        moved.fetch_add(count as u64, Ordering::Relaxed);
    }
    let _ = writer.shutdown().await;
    PumpEnd::Eof
}

/// Writes `data` at the given rates (KB/s, none for full speed): like Toxiproxy's bandwidth toxic,
/// in pieces of at most 100 ms worth, each sent after the time it takes at the rate.
async fn write_throttled<W: AsyncWrite + Unpin>(
    writer: &mut W,
    data: &[u8],
    rates: &[u64],
) -> io::Result<()> {
    let Some(slowest) = rates.iter().min() else {
        return writer.write_all(data).await;
    };
    let piece_size = usize::try_from(slowest.saturating_mul(100)).unwrap_or(usize::MAX);
    for piece in data.chunks(piece_size) {
        let micros: u64 = rates.iter().map(|rate| piece.len() as u64 * 1000 / rate).sum();
        tokio::time::sleep(Duration::from_micros(micros)).await;
        writer.write_all(piece).await?;
    }
    Ok(())
}
