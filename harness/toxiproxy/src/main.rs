//! toxiproxy-server: Toxiproxy's HTTP API over the noxious proxy engine.

mod api;
mod cli;
mod connection;
mod error;
mod generation;
mod model;
mod registry;
mod runtime;

use api::SharedRegistry;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use registry::Registry;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Mutex;

fn main() -> ExitCode {
    let options = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Serve(options)) => options,
        Ok(cli::Command::PrintVersion) => {
            println!("toxiproxy-server {}", api::VERSION);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Command::PrintHelp) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("toxiproxy-server: {message}\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("toxiproxy-server: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(options))
}

async fn serve(options: cli::Options) -> ExitCode {
    let config = match &options.config {
        Some(path) => match std::fs::read(path) {
            Ok(contents) => Some((path.display().to_string(), contents)),
            Err(err) => {
                eprintln!(
                    "toxiproxy-server: cannot read config file {}: {err}",
                    path.display()
                );
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    if options.seed.is_some() {
        eprintln!("toxiproxy-server: -seed is accepted but not used: toxicity draws are not seeded");
    }
    let listener = match TcpListener::bind((options.host.as_str(), options.port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "toxiproxy-server: cannot listen on {}:{}: {err}",
                options.host, options.port
            );
            return ExitCode::FAILURE;
        }
    };
    let registry: SharedRegistry = Arc::new(Mutex::new(Registry::default()));

    // Proxies from the config exist before the first API call is answered.
    if let Some((path, contents)) = config {
        let (created, failure) = registry.lock().await.populate(&contents).await;
        if let Some(err) = failure {
            eprintln!("toxiproxy-server: config file {path}: {}", err.message);
            registry.lock().await.stop_all().await;
            return ExitCode::from(2);
        }
        eprintln!(
            "toxiproxy-server: {} proxies from config file {path}",
            created.len()
        );
    }

    let address = listener.local_addr().map_or_else(
        |_| format!("{}:{}", options.host, options.port),
        |a| a.to_string(),
    );
    eprintln!(
        "toxiproxy-server: API listening on {address} (version {})",
        api::VERSION
    );

    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(err) => {
            eprintln!("toxiproxy-server: cannot watch SIGTERM: {err}");
            return ExitCode::FAILURE;
        }
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| api::handle(request, registry.clone()));
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                Err(err) => {
                    eprintln!("toxiproxy-server: API accept failed: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    eprintln!("toxiproxy-server: stopping");
    registry.lock().await.stop_all().await;
    ExitCode::SUCCESS
}
