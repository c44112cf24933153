//! `edge` binary: parse configuration, serve until Ctrl-C.

use anyhow::Context;
use clap::Parser;
use edge::{AppState, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "edge=info".into()),
        )
        .init();
    let cfg = Config::parse();
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(cfg.clone())?;
    println!(
        "edge {} listening on http://{addr}/ (upstream {})",
        state.name, cfg.origin
    );
    tracing::info!(name = %state.name, %addr, origin = %cfg.origin, cache_size = cfg.cache_size, "edge started");
    let shutdown = async {
        // If the signal handler cannot be installed, serve until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    edge::serve(listener, edge::router(state), &cfg, shutdown).await?;
    Ok(())
}
