//! Topic-level configs: the keys we accept, how each is validated, and the
//! effective values (override, else broker default) the partition layer uses.

use std::collections::BTreeMap;

use crate::config::Config;

/// Where a described config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    TopicOverride = 1,
    StaticBroker = 4,
    Default = 5,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicConfigError {
    #[error("unknown topic config '{0}'")]
    Unknown(String),
    #[error("invalid value '{value}' for {key}: {reason}")]
    Invalid { key: String, value: String, reason: &'static str },
}

#[derive(Clone, Copy)]
enum Kind {
    /// A long at or above the bound.
    Long(i64),
    /// One of these words (comma-separated lists allowed for cleanup.policy).
    Words(&'static [&'static str]),
}

/// (key, kind, default when the broker has no setting of its own).
const KNOWN: &[(&str, Kind, &str)] = &[
    ("cleanup.policy", Kind::Words(&["delete", "compact"]), "delete"),
    (
        "compression.type",
        Kind::Words(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        "producer",
    ),
    ("delete.retention.ms", Kind::Long(0), "86400000"),
    ("max.message.bytes", Kind::Long(0), "1048588"),
    ("message.timestamp.type", Kind::Words(&["CreateTime"]), "CreateTime"),
    ("min.insync.replicas", Kind::Long(1), "1"),
    ("retention.bytes", Kind::Long(-1), "-1"),
    ("retention.ms", Kind::Long(-1), "604800000"),
    ("segment.bytes", Kind::Long(14), "1073741824"),
    ("segment.ms", Kind::Long(1), "604800000"),
];

/// Checks one key and value.
pub fn validate(key: &str, value: &str) -> Result<(), TopicConfigError> {
    let Some((_, kind, _)) = KNOWN.iter().find(|(k, _, _)| *k == key) else {
        return Err(TopicConfigError::Unknown(key.to_string()));
    };
    let invalid = |reason| Err(TopicConfigError::Invalid { key: key.into(), value: value.into(), reason });
    match kind {
        Kind::Long(min) => match value.trim().parse::<i64>() {
            Ok(v) if v >= *min => Ok(()),
            Ok(_) => invalid("below the minimum"),
            Err(_) => invalid("not an integer"),
        },
        Kind::Words(words) => {
            if value.split(',').all(|w| words.contains(&w.trim())) {
                Ok(())
            } else {
                invalid("not an accepted value")
            }
        }
    }
}

/// The broker-wide default of a topic config, from the broker's own settings.
fn broker_default(key: &str, broker: &Config) -> Option<String> {
    match key {
        "max.message.bytes" => Some(broker.message_max_bytes.to_string()),
        "retention.ms" => Some(broker.log_retention_ms.to_string()),
        "retention.bytes" => Some(broker.log_retention_bytes.to_string()),
        _ => None,
    }
}

/// Every known config with its effective value and source.
pub fn describe(
    overrides: &BTreeMap<String, String>,
    broker: &Config,
) -> Vec<(String, String, ConfigSource)> {
    KNOWN
        .iter()
        .map(|(key, _, default)| {
            if let Some(v) = overrides.get(*key) {
                (key.to_string(), v.clone(), ConfigSource::TopicOverride)
            } else if let Some(v) = broker_default(key, broker) {
                (key.to_string(), v, ConfigSource::StaticBroker)
            } else {
                (key.to_string(), default.to_string(), ConfigSource::Default)
            }
        })
        .collect()
}

/// The values the data path needs, resolved once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    pub max_message_bytes: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    /// `cleanup.policy` includes `compact`.
    pub compact: bool,
    pub delete_retention_ms: i64,
}

impl Effective {
    pub fn resolve(overrides: &BTreeMap<String, String>, broker: &Config) -> Self {
        let get = |key: &str, default: i64| {
            overrides.get(key).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
        };
        // A compact-only topic keeps its data however old or large, as in
        // Kafka: deleting by time would drop the latest value of a key.
        let policy =
            |word: &str| overrides.get("cleanup.policy").map(|p| p.split(',').any(|w| w.trim() == word));
        let deletes = policy("delete").unwrap_or(true);
        Self {
            max_message_bytes: get("max.message.bytes", i64::from(broker.message_max_bytes)),
            retention_ms: if deletes { get("retention.ms", broker.log_retention_ms) } else { -1 },
            retention_bytes: if deletes { get("retention.bytes", broker.log_retention_bytes) } else { -1 },
            compact: policy("compact").unwrap_or(false),
            delete_retention_ms: get("delete.retention.ms", 86_400_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_only_topics_are_not_deleted_by_retention() {
        let broker = Config::default();
        let with = |policy: &str| {
            let o = BTreeMap::from([("cleanup.policy".to_string(), policy.to_string())]);
            Effective::resolve(&o, &broker)
        };
        assert_eq!((with("compact").retention_ms, with("compact").retention_bytes), (-1, -1));
        assert_eq!(with("compact,delete").retention_ms, broker.log_retention_ms);
        assert_eq!(Effective::resolve(&BTreeMap::new(), &broker).retention_ms, broker.log_retention_ms);
    }

    #[test]
    fn validation_accepts_known_and_rejects_bad_values() {
        assert!(validate("retention.ms", "1000").is_ok());
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(matches!(validate("retention.ms", "soon"), Err(TopicConfigError::Invalid { .. })));
        assert!(matches!(validate("retention.ms", "-5"), Err(TopicConfigError::Invalid { .. })));
        assert!(matches!(validate("no.such", "1"), Err(TopicConfigError::Unknown(_))));
    }

    #[test]
    fn overrides_beat_broker_defaults() {
        let broker = Config::default();
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "10".to_string());
        let e = Effective::resolve(&o, &broker);
        assert_eq!(e.retention_ms, 10);
        assert_eq!(e.max_message_bytes, 1_048_588);
    }
}
