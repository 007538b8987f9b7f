//! The harnesses' HTTP client: job requests with arbitrary bodies (honest, hostile or
//! malformed), metric scrapes and kernel uploads, each answered with its status code and body.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// A pooled HTTP/1 client for one base address.
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    /// `http://host:port`
    base: String,
}

/// A status code and body, or why there was none.
pub type Answer = Result<(u16, Bytes), String>;

impl Http {
    /// A client for `base` (`http://host:port`).
    pub fn new(base: &str) -> Http {
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(crate::load::target::IDLE).build_http();
        Http { client, base: base.trim_end_matches('/').to_string() }
    }

    /// `GET path`, answered within `timeout`.
    pub async fn get(&self, path: &str, timeout: Duration) -> Answer {
        self.send(Method::GET, path, &[], Bytes::new(), timeout).await
    }

    /// `POST path` with a JSON body, answered within `timeout`.
    pub async fn post_json(&self, path: &str, body: Bytes, timeout: Duration) -> Answer {
        self.send(Method::POST, path, &[("content-type", "application/json".into())], body, timeout).await
    }

    /// `PUT` multipart form data: a manifest (TOML text) and a module, with a bearer token.
    pub async fn put_kernel(&self, name: &str, token: &str, manifest: &str, module: &[u8]) -> Answer {
        let boundary = "helix-upload-boundary-5d1c";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"; filename=\"{name}.toml\"\r\n\r\n{manifest}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"module\"; filename=\"{name}.wasm\"\r\n\
             Content-Type: application/wasm\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(module);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let headers = [
            ("content-type", format!("multipart/form-data; boundary={boundary}")),
            ("authorization", format!("Bearer {token}")),
        ];
        self.send(Method::PUT, &format!("/v1/kernels/{name}"), &headers, Bytes::from(body), Duration::from_secs(60))
            .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| e.to_string())?;
            let code = response.status().as_u16();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok((code, body))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} ms", timeout.as_millis())))
    }
}
