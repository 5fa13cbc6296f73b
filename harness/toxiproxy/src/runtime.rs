//! A started proxy: the public listener with its client relays, and the noxious engine behind them.

use crate::model::ToxicSpec;
use crate::relay::{relay, stopped, ResetRules};
use bmrng::RequestSender;
use noxious::proxy::{ProxyConfig, ProxyRunner, Runner, Toxics};
use noxious::signal::{Close, Stop, Stopper};
use noxious::socket::TcpListener as EngineListener;
use noxious::toxic::{StreamDirection, ToxicEvent, ToxicEventKind, ToxicEventResult};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// How long an engine may take to apply a toxic change before the API gives up with a 500.
const ENGINE_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How many loopback ports to try for the engine when another process takes the chosen one.
const ENGINE_BIND_ATTEMPTS: usize = 5;

pub struct RunningProxy {
    name: String,
    listen: SocketAddr,
    stop: watch::Sender<bool>,
    acceptor: JoinHandle<()>,
    engine_stopper: Stopper,
    engine_closed: Close,
    engine_events: RequestSender<ToxicEvent, ToxicEventResult>,
}

impl RunningProxy {
    /// Binds `listen` and starts relaying to a fresh engine that connects to `upstream`.
    pub async fn start(
        name: &str,
        listen: &str,
        upstream: &str,
        toxics: &[ToxicSpec],
        rules: ResetRules,
    ) -> io::Result<RunningProxy> {
        let listener = TcpListener::bind(listen).await?;
        let listen_address = listener.local_addr()?;

        let mut engine_toxics = Toxics::empty();
        for toxic in toxics.iter().filter_map(ToxicSpec::engine_toxic) {
            match toxic.direction {
                StreamDirection::Upstream => engine_toxics.upstream.push(toxic),
                StreamDirection::Downstream => engine_toxics.downstream.push(toxic),
            }
        }
        let (engine_listener, engine_info, engine_address) =
            start_engine(name, upstream, engine_toxics).await?;
        let (engine_events, event_receiver) = bmrng::channel::<ToxicEvent, ToxicEventResult>(16);
        let (engine_stop, engine_stopper) = Stop::new();
        let (engine_closed, engine_closer) = Close::new();
        tokio::spawn(async move {
            let _ = ProxyRunner::run_proxy(
                engine_listener,
                engine_info,
                event_receiver,
                engine_stop,
                engine_closer,
            )
            .await;
        });

        let (stop, stop_receiver) = watch::channel(false);
        let acceptor = tokio::spawn(accept_clients(
            listener,
            engine_address,
            rules,
            stop_receiver,
        ));
        Ok(RunningProxy {
            name: name.to_owned(),
            listen: listen_address,
            stop,
            acceptor,
            engine_stopper,
            engine_closed,
            engine_events,
        })
    }

    /// The address actually bound (a requested port 0 becomes the kernel's choice).
    pub fn listen_address(&self) -> SocketAddr {
        self.listen
    }

    /// Closes the listener and every client connection, then the engine.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.acceptor.await;
        self.engine_stopper.stop();
        let _ = tokio::time::timeout(ENGINE_ANSWER_TIMEOUT, self.engine_closed.recv()).await;
    }

    pub async fn add_toxic(&self, toxic: &ToxicSpec) -> Result<(), String> {
        match toxic.engine_toxic() {
            Some(engine_toxic) => self.send(ToxicEventKind::AddToxic(engine_toxic)).await,
            None => Ok(()),
        }
    }

    pub async fn update_toxic(&self, toxic: &ToxicSpec) -> Result<(), String> {
        match toxic.engine_toxic() {
            Some(engine_toxic) => self.send(ToxicEventKind::UpdateToxic(engine_toxic)).await,
            None => Ok(()),
        }
    }

    pub async fn remove_toxic(&self, toxic: &ToxicSpec) -> Result<(), String> {
        match toxic.engine_toxic() {
            Some(_) => {
                self.send(ToxicEventKind::RemoveToxic(toxic.name.clone()))
                    .await
            }
            None => Ok(()),
        }
    }

    async fn send(&self, kind: ToxicEventKind) -> Result<(), String> {
        let event = ToxicEvent::new(self.name.clone(), kind);
        match tokio::time::timeout(
            ENGINE_ANSWER_TIMEOUT,
            self.engine_events.send_receive(event),
        )
        .await
        {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(err))) => Err(format!("proxy engine refused the change: {err}")),
            Ok(Err(_)) => Err("proxy engine is not running".to_owned()),
            Err(_) => Err(format!(
                "proxy engine did not apply the change within {}s",
                ENGINE_ANSWER_TIMEOUT.as_secs()
            )),
        }
    }
}

/// Binds the engine on a free loopback port. noxious does not report the port it bound, so a free
/// one is found first; another process could take it in between, hence the retries.
async fn start_engine(
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

async fn accept_clients(
    listener: TcpListener,
    engine: SocketAddr,
    rules: ResetRules,
    mut stop: watch::Receiver<bool>,
) {
    let mut relays = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    relays.spawn(relay(client, engine, rules.clone(), stop.clone()));
                }
                Err(err) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    eprintln!("toxiproxy-server: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = relays.join_next(), if !relays.is_empty() => {}
            () = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    // Every relay sees the same stop signal; waiting for them means the client sockets are closed
    // when a disable or delete answers.
    while relays.join_next().await.is_some() {}
}
