//! Assembles a running gateway: media thread, gate, dialect routes and the HTTP listener.

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::dialect;
use crate::gate::Gate;
use crate::media::{MediaHandle, MediaThread, RoomSnapshot};
use crate::ops;
use crate::policy::PolicyPlane;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen for HTTP on {addr}: {source}")]
    HttpBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Media(#[from] crate::media::MediaStartError),
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error("invalid [http] cors_origin: {0}")]
    CorsOrigin(String),
    #[error("cannot set up the cascade HTTP client: {0}")]
    RemoteClient(String),
    #[error("cannot start LEB report ingestion ([leb] report_log): {0}")]
    QualityLog(std::io::Error),
    #[error("cannot read the Janus rooms file ([janus] rooms_file) {0}")]
    JanusRooms(String),
    #[error("cannot use the TLS certificate or key ([http] tls_cert, tls_key): {0}")]
    Tls(String),
}

/// A running gateway.
pub struct Gateway {
    http_addr: SocketAddr,
    /// The listener speaks HTTPS (`[http] tls_cert`/`tls_key`).
    https: bool,
    janus_addrs: Vec<SocketAddr>,
    gate: Gate,
    media: MediaHandle,
    media_thread: Option<MediaThread>,
    stop_http: watch::Sender<bool>,
    http_task: JoinHandle<()>,
    janus_tasks: Vec<JoinHandle<()>>,
}

/// Binds `addr` and serves `app` on it over HTTPS until `stopped` turns true.
async fn serve_tls(
    addr: SocketAddr,
    tls: &TlsFiles,
    app: Router,
    mut stopped: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), StartError> {
    let config = axum_server::tls_rustls::RustlsConfig::from_config(tls.server_config()?);
    let bind_error = |source| StartError::HttpBind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let task = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum_server::from_tcp_rustls(listener, config)
            .handle(handle)
            .serve(service)
            .await
        {
            tracing::error!(error = %e, %bound, "HTTPS server failed");
        }
    });
    Ok((bound, task))
}

/// `[http] tls_cert` and `tls_key`.
struct TlsFiles {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl TlsFiles {
    fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, StartError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let named = |path: &std::path::Path, e: &dyn std::fmt::Display| {
            StartError::Tls(format!("{}: {e}", path.display()))
        };
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| named(&self.cert, &e))?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| named(&self.key, &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StartError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| named(&self.cert, &e))?;
        Ok(Arc::new(config))
    }
}

/// Binds `addr` and serves `app` on it until `stopped` turns true.
async fn serve(
    addr: SocketAddr,
    app: Router,
    mut stopped: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), StartError> {
    let bind_error = |source| StartError::HttpBind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, %bound, "HTTP server failed");
        }
    });
    Ok((bound, task))
}

impl Gateway {
    /// Binds the HTTP and media sockets and starts serving.
    pub async fn start(mut config: Config) -> Result<Gateway, StartError> {
        config.policies.ensure_svrsig_key();
        let policy = PolicyPlane::start(&config.policies)?;
        let (media, media_thread) = MediaHandle::start(&config.webrtc, &config.record)?;
        let remote = crate::cascade::RemoteClient::new()
            .map_err(|e| StartError::RemoteClient(e.to_string()))?;
        remote.spawn_remote_cleanup(&media);
        let quality = crate::ops::quality::QualityIngest::start(policy.clone(), &config.leb)
            .map_err(StartError::QualityLog)?;
        let gate = Gate::new(
            media.clone(),
            config.strategy.clone(),
            policy,
            remote,
            quality,
        );
        let janus =
            dialect::janus::JanusApi::new(gate.clone(), &config.janus, config.source.as_deref())
                .map_err(StartError::JanusRooms)?;
        let app = router(&config, gate.clone(), &janus)?;
        let (stop_http, stopped) = watch::channel(false);
        let (http_addr, http_task) = match (&config.http.tls_cert, &config.http.tls_key) {
            (Some(cert), Some(key)) => {
                let tls = TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                };
                serve_tls(config.http.listen, &tls, app, stopped.clone()).await?
            }
            _ => serve(config.http.listen, app, stopped.clone()).await?,
        };
        tracing::info!(%http_addr, "HTTP signaling listening");
        let mut janus_addrs = Vec::new();
        let mut janus_tasks = Vec::new();
        for addr in &config.janus.listen {
            let (bound, task) = serve(*addr, janus.standalone_routes(), stopped.clone()).await?;
            tracing::info!(addr = %bound, "Janus API listening (HTTP /janus, WebSocket /)");
            janus_addrs.push(bound);
            janus_tasks.push(task);
        }
        Ok(Gateway {
            http_addr,
            https: config.http.tls_cert.is_some(),
            janus_addrs,
            gate,
            media,
            media_thread: Some(media_thread),
            stop_http,
            http_task,
            janus_tasks,
        })
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The bound `[janus] listen` addresses (Janus's own ports).
    pub fn janus_addrs(&self) -> &[SocketAddr] {
        &self.janus_addrs
    }

    /// `http://<http_addr>`.
    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.http_addr)
    }

    /// The bound media UDP addresses.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        self.media.udp_addrs()
    }

    /// The gate, for in-process callers.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// A snapshot of one room, `None` when it does not exist (or the media plane stopped).
    pub async fn room(&self, name: &str) -> Option<RoomSnapshot> {
        self.gate.room(name).await.ok().flatten()
    }

    /// Stops accepting requests, lets in-flight ones finish (up to 10 s), closes every session
    /// and stops the media thread.
    pub async fn shutdown(mut self) {
        let _ = self.stop_http.send(true);
        for task in std::iter::once(&mut self.http_task).chain(self.janus_tasks.iter_mut()) {
            if tokio::time::timeout(Duration::from_secs(10), &mut *task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        let quality = self.gate.quality_ingest();
        let drained =
            tokio::task::spawn_blocking(move || quality.drain(Duration::from_secs(5))).await;
        if !matches!(drained, Ok(true)) {
            tracing::warn!("quality reports still queued at shutdown");
        }
        self.media.shutdown();
        if let Some(thread) = self.media_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        tracing::info!("gateway stopped");
    }
}

fn router(
    config: &Config,
    gate: Gate,
    janus: &dialect::janus::JanusApi,
) -> Result<Router, StartError> {
    let whip_state = dialect::whip::WhipState::new(
        gate.clone(),
        &config.webrtc.ice_servers,
        config.http.max_body_bytes,
    );
    let mut whip = dialect::whip::routes(whip_state);
    let rooms = dialect::rooms::routes(dialect::rooms::RoomsState {
        gate: gate.clone(),
        max_body_bytes: config.http.max_body_bytes,
        records: config.record.enabled.then(|| config.record.dir.clone()),
        allowed_origin: config.rooms.allowed_origin.as_str().into(),
        rate_limit: ops::rate_limit::ClientRateLimit::new(
            config.rooms.rate_limit_rps,
            config.rooms.rate_limit_burst,
        )
        .map(Arc::new),
        bootstrap: Arc::new(dialect::rooms::Bootstrap {
            auth_enabled: !config.policies.access_is_open(),
            ice_servers: config.webrtc.ice_servers.clone(),
        }),
    });
    if !config.http.cors_origin.is_empty() {
        whip = whip.layer(cors(&config.http.cors_origin)?);
    }
    Ok(Router::new()
        .merge(whip)
        .merge(rooms)
        .merge(dialect::streams::routes(gate.clone()))
        .merge(dialect::live777_info::routes(gate.clone()))
        .merge(dialect::layer::routes(gate.clone()))
        .merge(dialect::leb::routes(dialect::leb::LebState {
            gate: gate.clone(),
            room_from: config.leb.room_from,
        }))
        .merge(dialect::srs::routes(dialect::srs::SrsState {
            gate: gate.clone(),
            room_from: config.leb.room_from,
        }))
        .merge(dialect::runner365::routes(
            dialect::runner365::Runner365State {
                gate: gate.clone(),
                max_body_bytes: config.http.max_body_bytes,
            },
        ))
        .merge(janus.routes())
        .merge(ops::metrics::routes(gate))
        .merge(ops::pages::routes())
        .layer(DefaultBodyLimit::max(config.http.max_body_bytes)))
}

/// CORS for WHIP/WHEP (RFC 9725 §4.6: browsers must be able to read Location, ETag, Link).
fn cors(origin: &str) -> Result<CorsLayer, StartError> {
    let allow_origin = if origin == "*" {
        AllowOrigin::any()
    } else {
        AllowOrigin::exact(
            HeaderValue::from_str(origin).map_err(|e| StartError::CorsOrigin(e.to_string()))?,
        )
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
            Method::GET,
            Method::HEAD,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::IF_MATCH,
        ])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::LINK,
            HeaderName::from_static("accept-patch"),
            HeaderName::from_static("accept-post"),
        ]))
}

/// Runs a gateway until SIGINT or SIGTERM, then shuts it down gracefully.
pub async fn run_until_signal(config: Config) -> Result<(), StartError> {
    let gateway = Gateway::start(config).await?;
    wait_for_signal().await;
    tracing::info!("shutdown signal received");
    gateway.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
