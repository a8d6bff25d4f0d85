//! HTTPS on both ends with rustls (R20): the hub's accept loop (axum over
//! tokio-rustls) and a minimal HTTP/1.1 client for sites and the bench.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::{HubError, Result};

/// Serve `app` over TLS on `listener` until the process ends.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
) -> Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept: {e}");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
        });
    }
}

/// One HTTPS connection to a hub (kept open for many requests).
pub struct HubConn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

/// Where a hub is: `https://host:port`.
#[derive(Clone)]
pub struct HubUrl {
    pub host: String,
    pub port: u16,
}

impl HubUrl {
    pub fn parse(url: &str) -> Result<HubUrl> {
        let rest = url.strip_prefix("https://").ok_or_else(|| {
            HubError::Config(format!("hub URL must start with https:// (R20): {url}"))
        })?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .map_err(|_| HubError::Config(format!("bad port in {url}")))?,
            ),
            None => (rest.to_string(), 443),
        };
        Ok(HubUrl { host, port })
    }
}

impl HubConn {
    pub async fn connect(url: &HubUrl, tls: Arc<rustls::ClientConfig>) -> Result<HubConn> {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| HubError::Transport(format!("connect {}:{}: {e}", url.host, url.port)))?;
        tcp.set_nodelay(true).ok();
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| HubError::Config(e.to_string()))?;
        let tls = TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| HubError::Transport(format!("TLS: {e}")))?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| HubError::Transport(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(HubConn {
            sender,
            host: format!("{}:{}", url.host, url.port),
        })
    }

    /// Send one request; returns the status and the body.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>)> {
        self.sender
            .ready()
            .await
            .map_err(|e| HubError::Transport(e.to_string()))?;
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("content-type", "application/json");
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        let req = b
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| HubError::Transport(e.to_string()))?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| HubError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| HubError::Transport(e.to_string()))?
            .to_bytes()
            .to_vec();
        Ok((status, body))
    }
}

/// Bind helper used by the CLI and tests.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| HubError::Config(format!("binding {addr}: {e}")))
}
