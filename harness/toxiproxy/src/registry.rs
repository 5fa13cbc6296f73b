//! The proxies by name with their toxics: what every API call reads and changes.

use crate::connection::{LocalEffect, LocalToxic, LocalToxics};
use crate::error::ApiError;
use crate::model::{bind_address, check_address, ProxyFields, Stream, ToxicSpec, ToxicType};
use crate::runtime::RunningProxy;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

struct Proxy {
    name: String,
    /// As requested until the proxy first starts, then the address it is bound to.
    listen: String,
    upstream: String,
    /// In the order added; the API lists upstream toxics first, as Toxiproxy does.
    toxics: Vec<ToxicSpec>,
    local_toxics: LocalToxics,
    /// `Some` exactly while the proxy is enabled.
    running: Option<RunningProxy>,
}

impl Proxy {
    fn new(name: String, listen: String, upstream: String) -> Proxy {
        Proxy {
            name,
            listen,
            upstream,
            toxics: Vec::new(),
            local_toxics: LocalToxics::default(),
            running: None,
        }
    }

    fn enabled(&self) -> bool {
        self.running.is_some()
    }

    async fn start(&mut self) -> Result<(), ApiError> {
        if self.running.is_some() {
            return Ok(());
        }
        let address = bind_address(&self.listen);
        let running = RunningProxy::start(
            &self.name,
            &address,
            &self.upstream,
            &self.toxics,
            self.local_toxics.clone(),
        )
        .await
        .map_err(ApiError::internal)?;
        self.listen = running.listen_address().to_string();
        eprintln!(
            "toxiproxy-server: started proxy {} on {} to {}",
            self.name, self.listen, self.upstream
        );
        self.running = Some(running);
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
            eprintln!("toxiproxy-server: stopped proxy {}", self.name);
        }
    }

    /// Replaces the toxics, on open connections too when the proxy runs.
    async fn set_toxics(&mut self, toxics: Vec<ToxicSpec>) -> Result<(), ApiError> {
        if let Some(running) = &self.running {
            running.apply_toxics(&toxics).await.map_err(ApiError::internal)?;
        }
        self.toxics = toxics;
        self.sync_local_toxics();
        Ok(())
    }

    fn sync_local_toxics(&self) {
        let local = self
            .toxics
            .iter()
            .filter_map(|toxic| {
                let effect = match toxic.toxic_type {
                    ToxicType::ResetPeer { timeout } => LocalEffect::ResetPeer {
                        timeout: Duration::from_millis(timeout),
                    },
                    ToxicType::Bandwidth { rate } => LocalEffect::Bandwidth { rate },
                    _ => return None,
                };
                Some(LocalToxic {
                    stream: toxic.stream,
                    effect,
                    toxicity: toxic.toxicity,
                    revision: toxic.revision,
                })
            })
            .collect();
        self.local_toxics.replace(local);
    }

    fn toxic_position(&self, name: &str) -> Result<usize, ApiError> {
        self.toxics
            .iter()
            .position(|toxic| toxic.name == name)
            .ok_or_else(ApiError::toxic_not_found)
    }

    fn toxics_json(&self) -> Value {
        let by_stream = |stream: Stream| {
            self.toxics
                .iter()
                .filter(move |toxic| toxic.stream == stream)
                .map(ToxicSpec::to_json)
        };
        Value::Array(
            by_stream(Stream::Upstream)
                .chain(by_stream(Stream::Downstream))
                .collect(),
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled(),
            "toxics": self.toxics_json(),
        })
    }

    /// Whether a requested listen/upstream pair means rebinding (Toxiproxy's `Differs`).
    async fn differs(&self, listen: &str, upstream: &str) -> Result<bool, ApiError> {
        Ok(resolve_listen(listen).await? != self.listen || upstream != self.upstream)
    }
}

/// A listen field as the address it would bind, for comparison with a bound proxy's.
async fn resolve_listen(listen: &str) -> Result<String, ApiError> {
    let address = bind_address(listen);
    if let Ok(socket_address) = address.parse::<SocketAddr>() {
        return Ok(socket_address.to_string());
    }
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(address.as_str())
        .await
        .map_err(|err| ApiError::bad_body(format!("cannot resolve listen address {listen:?}: {err}")))?
        .collect();
    // Go's resolver, like this, prefers an IPv4 address when a name has both.
    resolved
        .iter()
        .find(|candidate| candidate.is_ipv4())
        .or(resolved.first())
        .map(SocketAddr::to_string)
        .ok_or_else(|| ApiError::bad_body(format!("listen address {listen:?} resolves to nothing")))
}

fn check_proxy_addresses(listen: &str, upstream: &str) -> Result<(), ApiError> {
    check_address("listen", &bind_address(listen), false)?;
    check_address("upstream", upstream, true)
}

#[derive(Default)]
pub struct Registry {
    proxies: BTreeMap<String, Proxy>,
    last_revision: u64,
}

impl Registry {
    fn next_revision(&mut self) -> u64 {
        self.last_revision += 1;
        self.last_revision
    }

    fn proxy(&self, name: &str) -> Result<&Proxy, ApiError> {
        self.proxies.get(name).ok_or_else(ApiError::proxy_not_found)
    }

    fn proxy_mut(&mut self, name: &str) -> Result<&mut Proxy, ApiError> {
        self.proxies.get_mut(name).ok_or_else(ApiError::proxy_not_found)
    }

    pub fn list(&self) -> Value {
        Value::Object(
            self.proxies
                .iter()
                .map(|(name, proxy)| (name.clone(), proxy.to_json()))
                .collect::<Map<String, Value>>(),
        )
    }

    pub fn show(&self, name: &str) -> Result<Value, ApiError> {
        Ok(self.proxy(name)?.to_json())
    }

    pub async fn create(&mut self, body: &[u8]) -> Result<Value, ApiError> {
        let fields = ProxyFields::from_body(body)?;
        let name = fields.name.filter(|name| !name.is_empty());
        let name = name.ok_or_else(|| ApiError::missing_field("name"))?;
        let upstream = fields.upstream.filter(|upstream| !upstream.is_empty());
        let upstream = upstream.ok_or_else(|| ApiError::missing_field("upstream"))?;
        let listen = fields.listen.unwrap_or_default();
        check_proxy_addresses(&listen, &upstream)?;
        if self.proxies.contains_key(&name) {
            return Err(ApiError::proxy_exists());
        }
        let mut proxy = Proxy::new(name.clone(), listen, upstream);
        if fields.enabled.unwrap_or(true) {
            proxy.start().await?;
        }
        let shown = proxy.to_json();
        self.proxies.insert(name, proxy);
        Ok(shown)
    }

    /// Creates or replaces each proxy in a JSON array; a proxy whose listen and upstream are
    /// unchanged is kept as it is, toxics included. Returns the proxies done before any error.
    pub async fn populate(&mut self, body: &[u8]) -> (Vec<Value>, Option<ApiError>) {
        let list = match ProxyFields::list_from_body(body) {
            Ok(list) => list,
            Err(err) => return (Vec::new(), Some(err)),
        };
        for (index, fields) in list.iter().enumerate() {
            let listen = fields.listen.as_deref().unwrap_or_default();
            let upstream = fields.upstream.as_deref().unwrap_or_default();
            if let Err(err) = check_proxy_addresses(listen, upstream) {
                let message = format!("{} (proxy {})", err.message, index + 1);
                return (Vec::new(), Some(ApiError { message, ..err }));
            }
        }
        let mut done = Vec::with_capacity(list.len());
        for fields in list {
            match self.add_or_replace(fields).await {
                Ok(shown) => done.push(shown),
                Err(err) => return (done, Some(err)),
            }
        }
        (done, None)
    }

    async fn add_or_replace(&mut self, fields: ProxyFields) -> Result<Value, ApiError> {
        let name = fields.name.unwrap_or_default();
        let listen = fields.listen.unwrap_or_default();
        let upstream = fields.upstream.unwrap_or_default();
        if let Some(existing) = self.proxies.get_mut(&name) {
            if !existing.differs(&listen, &upstream).await? {
                return Ok(existing.to_json());
            }
            existing.stop().await;
        }
        let mut proxy = Proxy::new(name.clone(), listen, upstream);
        if fields.enabled.unwrap_or(true) {
            proxy.start().await?;
        }
        let shown = proxy.to_json();
        self.proxies.insert(name, proxy);
        Ok(shown)
    }

    /// Changes listen, upstream and enabled; a changed address restarts the proxy (which drops its
    /// connections), as in Toxiproxy.
    pub async fn update(&mut self, name: &str, body: &[u8]) -> Result<Value, ApiError> {
        let fields = ProxyFields::from_body(body)?;
        let proxy = self.proxy_mut(name)?;
        let listen = fields.listen.unwrap_or_else(|| proxy.listen.clone());
        let upstream = fields.upstream.unwrap_or_else(|| proxy.upstream.clone());
        let enabled = fields.enabled.unwrap_or(proxy.enabled());
        check_proxy_addresses(&listen, &upstream)?;
        if proxy.differs(&listen, &upstream).await? {
            proxy.stop().await;
            proxy.listen = listen;
            proxy.upstream = upstream;
        }
        if enabled {
            proxy.start().await?;
        } else {
            proxy.stop().await;
        }
        Ok(proxy.to_json())
    }

    pub async fn delete(&mut self, name: &str) -> Result<(), ApiError> {
        let mut proxy = self.proxies.remove(name).ok_or_else(ApiError::proxy_not_found)?;
        proxy.stop().await;
        Ok(())
    }

    /// Enables every proxy and removes every toxic.
    pub async fn reset(&mut self) -> Result<(), ApiError> {
        for proxy in self.proxies.values_mut() {
            proxy.set_toxics(Vec::new()).await?;
            proxy.start().await?;
        }
        Ok(())
    }

    pub fn toxics(&self, proxy: &str) -> Result<Value, ApiError> {
        Ok(self.proxy(proxy)?.toxics_json())
    }

    pub fn toxic(&self, proxy: &str, toxic: &str) -> Result<Value, ApiError> {
        let proxy = self.proxy(proxy)?;
        Ok(proxy.toxics[proxy.toxic_position(toxic)?].to_json())
    }

    pub async fn add_toxic(&mut self, proxy: &str, body: &[u8]) -> Result<Value, ApiError> {
        let revision = self.next_revision();
        let proxy = self.proxy_mut(proxy)?;
        let toxic = ToxicSpec::from_create_body(body, revision)?;
        if proxy.toxics.iter().any(|existing| existing.name == toxic.name) {
            return Err(ApiError::toxic_exists());
        }
        let shown = toxic.to_json();
        let mut toxics = proxy.toxics.clone();
        toxics.push(toxic);
        proxy.set_toxics(toxics).await?;
        eprintln!("toxiproxy-server: proxy {}: added toxic {shown}", proxy.name);
        Ok(shown)
    }

    pub async fn update_toxic(&mut self, proxy: &str, toxic: &str, body: &[u8]) -> Result<Value, ApiError> {
        let revision = self.next_revision();
        let proxy = self.proxy_mut(proxy)?;
        let position = proxy.toxic_position(toxic)?;
        let updated = proxy.toxics[position].updated(body, revision)?;
        let shown = updated.to_json();
        let mut toxics = proxy.toxics.clone();
        toxics[position] = updated;
        proxy.set_toxics(toxics).await?;
        eprintln!("toxiproxy-server: proxy {}: updated toxic {shown}", proxy.name);
        Ok(shown)
    }

    pub async fn delete_toxic(&mut self, proxy: &str, toxic: &str) -> Result<(), ApiError> {
        let proxy = self.proxy_mut(proxy)?;
        let position = proxy.toxic_position(toxic)?;
        let mut toxics = proxy.toxics.clone();
        toxics.remove(position);
        proxy.set_toxics(toxics).await?;
        eprintln!("toxiproxy-server: proxy {}: removed toxic {toxic}", proxy.name);
        Ok(())
    }

    /// Stops every proxy, for a clean exit.
    pub async fn stop_all(&mut self) {
        for proxy in self.proxies.values_mut() {
            proxy.stop().await;
        }
    }
}
