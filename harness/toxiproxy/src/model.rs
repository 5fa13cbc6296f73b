//! Toxiproxy's JSON model of proxies and toxics: parsing request bodies, validating them, and the
//! shapes the API answers with.

use crate::error::ApiError;
use noxious::toxic::{StreamDirection, Toxic, ToxicKind};
use serde_json::{json, Map, Value};

/// Which way a toxic acts: `upstream` is client to server, `downstream` server to client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Upstream,
    Downstream,
}

impl Stream {
    fn parse(text: &str) -> Option<Stream> {
        match text {
            "upstream" => Some(Stream::Upstream),
            "downstream" => Some(Stream::Downstream),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }

    fn direction(self) -> StreamDirection {
        match self {
            Stream::Upstream => StreamDirection::Upstream,
            Stream::Downstream => StreamDirection::Downstream,
        }
    }
}

/// A toxic's type with its attributes. Times are milliseconds except `Slicer::delay` (microseconds),
/// `Bandwidth::rate` is KB/s; the units are Toxiproxy's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToxicType {
    Noop,
    Latency {
        latency: u64,
        jitter: u64,
    },
    Bandwidth {
        rate: u64,
    },
    SlowClose {
        delay: u64,
    },
    Timeout {
        timeout: u64,
    },
    ResetPeer {
        timeout: u64,
    },
    Slicer {
        average_size: u64,
        size_variation: u64,
        delay: u64,
    },
    LimitData {
        bytes: u64,
    },
}

impl ToxicType {
    pub const NAMES: [&'static str; 8] = [
        "noop",
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
    ];

    /// Builds the type from its name and attribute object. Like Toxiproxy, an absent attribute is 0.
    fn from_attributes(type_name: &str, attributes: &Map<String, Value>) -> Result<ToxicType, ApiError> {
        let attr = |key: &str| non_negative_attribute(attributes, key);
        Ok(match type_name {
            "noop" => ToxicType::Noop,
            "latency" => {
                let (latency, jitter) = (attr("latency")?, attr("jitter")?);
                // noxious computes latency + draw − jitter unsigned: past the latency it wraps
                // around and holds the data for ever.
                if jitter > latency {
                    return Err(ApiError::bad_body(format!(
                        "attribute `jitter` ({jitter}) must not exceed `latency` ({latency})"
                    )));
                }
                ToxicType::Latency { latency, jitter }
            }
            "bandwidth" => ToxicType::Bandwidth { rate: attr("rate")? },
            "slow_close" => ToxicType::SlowClose {
                delay: attr("delay")?,
            },
            "timeout" => ToxicType::Timeout {
                timeout: attr("timeout")?,
            },
            "reset_peer" => ToxicType::ResetPeer {
                timeout: attr("timeout")?,
            },
            "slicer" => {
                let (average_size, size_variation) = (attr("average_size")?, attr("size_variation")?);
                // noxious slices forever at size 0, and draws sizes from average±variation, which
                // would underflow past the average.
                if average_size == 0 {
                    return Err(ApiError::bad_body("attribute `average_size` must be at least 1"));
                }
                if size_variation >= average_size {
                    return Err(ApiError::bad_body(format!(
                        "attribute `size_variation` ({size_variation}) must be smaller than \
                         `average_size` ({average_size})"
                    )));
                }
                ToxicType::Slicer {
                    average_size,
                    size_variation,
                    delay: attr("delay")?,
                }
            }
            "limit_data" => ToxicType::LimitData {
                bytes: attr("bytes")?,
            },
            _ => return Err(ApiError::invalid_toxic_type()),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            ToxicType::Noop => "noop",
            ToxicType::Latency { .. } => "latency",
            ToxicType::Bandwidth { .. } => "bandwidth",
            ToxicType::SlowClose { .. } => "slow_close",
            ToxicType::Timeout { .. } => "timeout",
            ToxicType::ResetPeer { .. } => "reset_peer",
            ToxicType::Slicer { .. } => "slicer",
            ToxicType::LimitData { .. } => "limit_data",
        }
    }

    fn attributes(&self) -> Value {
        match *self {
            ToxicType::Noop => json!({}),
            ToxicType::Latency { latency, jitter } => json!({"latency": latency, "jitter": jitter}),
            ToxicType::Bandwidth { rate } => json!({"rate": rate}),
            ToxicType::SlowClose { delay } => json!({"delay": delay}),
            ToxicType::Timeout { timeout } | ToxicType::ResetPeer { timeout } => {
                json!({"timeout": timeout})
            }
            ToxicType::Slicer {
                average_size,
                size_variation,
                delay,
            } => {
                json!({"average_size": average_size, "size_variation": size_variation, "delay": delay})
            }
            ToxicType::LimitData { bytes } => json!({"bytes": bytes}),
        }
    }

    /// The noxious engine's kind; `None` for the toxics this server applies itself: reset_peer
    /// (noxious has none) and bandwidth (noxious' panics on chunks over rate × 100 bytes).
    fn engine_kind(&self) -> Option<ToxicKind> {
        Some(match *self {
            ToxicType::Noop => ToxicKind::Noop,
            ToxicType::Latency { latency, jitter } => ToxicKind::Latency { latency, jitter },
            ToxicType::SlowClose { delay } => ToxicKind::SlowClose { delay },
            ToxicType::Timeout { timeout } => ToxicKind::Timeout { timeout },
            ToxicType::Slicer {
                average_size,
                size_variation,
                delay,
            } => ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            },
            ToxicType::LimitData { bytes } => ToxicKind::LimitData { bytes },
            ToxicType::ResetPeer { .. } | ToxicType::Bandwidth { .. } => return None,
        })
    }
}

fn non_negative_attribute(attributes: &Map<String, Value>, key: &str) -> Result<u64, ApiError> {
    match attributes.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(value) => value.as_u64().ok_or_else(|| {
            ApiError::bad_body(format!(
                "attribute `{key}` must be a non-negative integer, got {value}"
            ))
        }),
    }
}

/// A toxic as the API knows it. `revision` is internal: it changes whenever the toxic does, so that
/// per-connection toxicity draws are redone after an update.
#[derive(Clone, Debug, PartialEq)]
pub struct ToxicSpec {
    pub name: String,
    pub toxic_type: ToxicType,
    pub stream: Stream,
    pub toxicity: f32,
    pub revision: u64,
}

impl ToxicSpec {
    /// Parses a `POST /proxies/{proxy}/toxics` body. Defaults as Toxiproxy's: stream `downstream`,
    /// toxicity 1, name `{type}_{stream}`.
    pub fn from_create_body(body: &[u8], revision: u64) -> Result<ToxicSpec, ApiError> {
        let object = parse_object(body)?;
        let stream = match object.get("stream") {
            None | Some(Value::Null) => Stream::Downstream,
            Some(Value::String(text)) if text.is_empty() => Stream::Downstream,
            Some(Value::String(text)) => Stream::parse(text).ok_or_else(ApiError::invalid_stream)?,
            Some(_) => return Err(ApiError::invalid_stream()),
        };
        let type_name = optional_string(&object, "type")?.unwrap_or_default();
        if !ToxicType::NAMES.contains(&type_name.as_str()) {
            return Err(ApiError::invalid_toxic_type());
        }
        let name = match optional_string(&object, "name")? {
            Some(name) if !name.is_empty() => name,
            _ => format!("{}_{}", type_name, stream.as_str()),
        };
        let toxicity = optional_toxicity(&object)?.unwrap_or(1.0);
        let attributes = attributes_object(&object)?;
        Ok(ToxicSpec {
            name,
            toxic_type: ToxicType::from_attributes(&type_name, &attributes)?,
            stream,
            toxicity,
            revision,
        })
    }

    /// Applies a `POST /proxies/{proxy}/toxics/{toxic}` body: given attributes replace the old ones
    /// one by one, toxicity if given; name, type and stream stay (as in Toxiproxy).
    pub fn updated(&self, body: &[u8], revision: u64) -> Result<ToxicSpec, ApiError> {
        let object = parse_object(body)?;
        let mut attributes = match self.toxic_type.attributes() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        attributes.extend(attributes_object(&object)?);
        Ok(ToxicSpec {
            name: self.name.clone(),
            toxic_type: ToxicType::from_attributes(self.toxic_type.name(), &attributes)?,
            stream: self.stream,
            toxicity: optional_toxicity(&object)?.unwrap_or(self.toxicity),
            revision,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "attributes": self.toxic_type.attributes(),
            "name": self.name,
            "type": self.toxic_type.name(),
            "stream": self.stream.as_str(),
            "toxicity": self.toxicity,
        })
    }

    /// The toxic for the noxious engine, or `None` for a toxic this server applies itself.
    pub fn engine_toxic(&self) -> Option<Toxic> {
        Some(Toxic {
            kind: self.toxic_type.engine_kind()?,
            name: self.name.clone(),
            toxicity: self.toxicity,
            direction: self.stream.direction(),
        })
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::bad_body(format!(
            "expected a JSON object, got {}",
            json_kind(&other)
        ))),
        Err(err) => Err(ApiError::bad_body(err)),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn attributes_object(object: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    match object.get("attributes") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(other) => Err(ApiError::bad_body(format!(
            "field `attributes` must be an object, got {}",
            json_kind(other)
        ))),
    }
}

fn optional_string(object: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(ApiError::bad_body(format!(
            "field `{key}` must be a string, got {}",
            json_kind(other)
        ))),
    }
}

fn optional_bool(object: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(ApiError::bad_body(format!(
            "field `{key}` must be a boolean, got {}",
            json_kind(other)
        ))),
    }
}

fn optional_toxicity(object: &Map<String, Value>) -> Result<Option<f32>, ApiError> {
    match object.get("toxicity") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_f64() {
            Some(toxicity) if (0.0..=1.0).contains(&toxicity) => Ok(Some(toxicity as f32)),
            _ => Err(ApiError::bad_body(format!(
                "field `toxicity` must be a number from 0 to 1, got {value}"
            ))),
        },
    }
}

/// The fields of a proxy in a create, update or populate body; absent fields are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyFields {
    pub name: Option<String>,
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub enabled: Option<bool>,
}

impl ProxyFields {
    pub fn from_body(body: &[u8]) -> Result<ProxyFields, ApiError> {
        Self::from_object(&parse_object(body)?)
    }

    fn from_object(object: &Map<String, Value>) -> Result<ProxyFields, ApiError> {
        Ok(ProxyFields {
            name: optional_string(object, "name")?,
            listen: optional_string(object, "listen")?,
            upstream: optional_string(object, "upstream")?,
            enabled: optional_bool(object, "enabled")?,
        })
    }

    /// Parses a populate body or config file: a JSON array of proxies. Errors name the proxy by its
    /// 1-based position, as Toxiproxy's do.
    pub fn list_from_body(body: &[u8]) -> Result<Vec<ProxyFields>, ApiError> {
        let items = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => items,
            Ok(other) => {
                return Err(ApiError::bad_body(format!(
                    "expected a JSON array of proxies, got {}",
                    json_kind(&other)
                )))
            }
            Err(err) => return Err(ApiError::bad_body(err)),
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let position = index + 1;
                let Value::Object(object) = item else {
                    return Err(ApiError::bad_body(format!(
                        "proxy {position} must be an object, got {}",
                        json_kind(item)
                    )));
                };
                let fields = Self::from_object(object).map_err(|err| ApiError {
                    message: format!("{} (proxy {position})", err.message),
                    ..err
                })?;
                if fields.name.as_deref().unwrap_or_default().is_empty() {
                    return Err(ApiError::missing_field(format!("name at proxy {position}")));
                }
                if fields.upstream.as_deref().unwrap_or_default().is_empty() {
                    return Err(ApiError::missing_field(format!("upstream at proxy {position}")));
                }
                Ok(fields)
            })
            .collect()
    }
}

/// Checks a `HOST:PORT` address (host may be empty for listen, meaning all interfaces).
pub fn check_address(field: &str, address: &str, host_required: bool) -> Result<(), ApiError> {
    let expected = || {
        ApiError::bad_body(format!(
            "field `{field}` must be HOST:PORT with a port from 0 to 65535, got {address:?}"
        ))
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(expected)?;
    if port.parse::<u16>().is_err() || (host_required && host.is_empty()) {
        return Err(expected());
    }
    Ok(())
}

/// The address to bind for a listen field: Toxiproxy (Go) reads an empty host as all interfaces.
pub fn bind_address(listen: &str) -> String {
    if listen.is_empty() {
        "0.0.0.0:0".to_owned()
    } else if let Some(port) = listen.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else {
        listen.to_owned()
    }
}
