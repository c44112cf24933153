//! `edge` binary: parse configuration, serve until Ctrl-C or SIGTERM, reload the
//! cluster settings on SIGHUP.

use anyhow::Context;
use clap::Parser;
use edge::{AppState, Config};
use http_rules::signal::stop_signal;
use tokio::signal::unix::{SignalKind, signal};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "edge=info,http_rules=info".into()),
        )
        .init();
    let cfg = Config::parse();
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(cfg.clone())?;
    let m = state.membership();
    let upstreams: Vec<&str> = m.upstreams.iter().map(|u| u.url.as_str()).collect();
    println!(
        "edge {} listening on http://{addr}/ (upstream {})",
        state.name,
        upstreams.join(", ")
    );
    for p in &m.peers {
        let me = if p.is_self { " (self)" } else { "" };
        println!("edge {} peer {} {}{me}", state.name, p.name, p.url);
    }
    tracing::info!(name = %state.name, %addr, cluster = %m.describe(), cache_size = cfg.cache_size, "edge started");
    drop(m);
    tokio::spawn(reload_on_sighup(state.clone()));
    let draining = state.clone();
    let shutdown = async move {
        stop_signal().await;
        draining.begin_drain();
        tracing::info!(delay = ?draining.cfg.drain_delay, "stop requested: reporting unhealthy, then draining");
        tokio::time::sleep(draining.cfg.drain_delay).await;
    };
    edge::serve(listener, edge::router(state), &cfg, shutdown).await?;
    Ok(())
}

/// Re-reads the `--config` file on each SIGHUP; a bad file keeps the running settings.
async fn reload_on_sighup(state: std::sync::Arc<AppState>) {
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGHUP: no config reloads");
            return;
        }
    };
    while hup.recv().await.is_some() {
        match state.reload() {
            Ok(m) => tracing::info!(cluster = %m.describe(), "config reloaded"),
            Err(e) => tracing::error!("config reload rejected, keeping the running settings: {e}"),
        }
    }
}
