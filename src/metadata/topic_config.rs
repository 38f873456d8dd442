//! Topic-level configs: one descriptor per key we accept (type, default, the
//! broker setting it defaults to, whether it is enforced), validation, and the
//! effective values (override, else broker setting, else default) the
//! partition layer uses.

use std::collections::BTreeMap;

use crate::config::{kafka_long, kafka_millis, Config};

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

/// A broker setting by its Kafka name, and how to read it from `Config`.
type BrokerSetting = (&'static str, fn(&Config) -> String);

/// One topic config, the one place its key, type, default and meaning are
/// written.
pub struct Descriptor {
    pub key: &'static str,
    kind: Kind,
    /// The value when neither the topic nor the broker sets one.
    default: &'static str,
    /// The broker setting that is this config's default (Kafka's broker-level
    /// name), and its value in the broker's config.
    broker: Option<BrokerSetting>,
    /// Whether raftka acts on the value. The others are accepted and shown,
    /// because clients and tools set them, but change nothing.
    pub enforced: bool,
}

/// Every topic config raftka accepts, by key.
pub const DESCRIPTORS: &[Descriptor] = &[
    Descriptor {
        key: "cleanup.policy",
        kind: Kind::Words(&["delete", "compact"]),
        default: "delete",
        broker: None,
        enforced: true,
    },
    Descriptor {
        key: "compression.type",
        kind: Kind::Words(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        default: "producer",
        broker: None,
        // Batches are stored as the producer compressed them.
        enforced: false,
    },
    Descriptor {
        key: "delete.retention.ms",
        kind: Kind::Long(0),
        default: "86400000",
        broker: None,
        enforced: true,
    },
    Descriptor {
        key: "max.message.bytes",
        kind: Kind::Long(0),
        default: "1048588",
        broker: Some(("message.max.bytes", |c| c.message_max_bytes.to_string())),
        enforced: true,
    },
    Descriptor {
        key: "message.timestamp.type",
        kind: Kind::Words(&["CreateTime"]),
        default: "CreateTime",
        broker: None,
        enforced: true,
    },
    Descriptor {
        key: "min.insync.replicas",
        kind: Kind::Long(1),
        default: "1",
        broker: None,
        // acks=all waits for a Raft majority of the replicas, whatever this says.
        enforced: false,
    },
    Descriptor {
        key: "retention.bytes",
        kind: Kind::Long(-1),
        default: "-1",
        broker: Some(("log.retention.bytes", |c| kafka_long(c.log_retention_bytes).to_string())),
        enforced: true,
    },
    Descriptor {
        key: "retention.ms",
        kind: Kind::Long(-1),
        default: "604800000",
        broker: Some(("log.retention.ms", |c| kafka_millis(c.log_retention).to_string())),
        enforced: true,
    },
    // Every partition of a broker uses its `log_segment_bytes`; a topic's
    // own value is accepted and shown, not applied.
    Descriptor {
        key: "segment.bytes",
        kind: Kind::Long(14),
        default: "67108864",
        broker: Some(("log.segment.bytes", |c| c.log_segment_bytes.to_string())),
        enforced: false,
    },
    Descriptor {
        key: "segment.ms",
        kind: Kind::Long(1),
        default: "604800000",
        broker: None,
        enforced: false,
    },
];

fn descriptor(key: &str) -> Option<&'static Descriptor> {
    DESCRIPTORS.iter().find(|d| d.key == key)
}

/// Checks one key and value.
pub fn validate(key: &str, value: &str) -> Result<(), TopicConfigError> {
    let Some(d) = descriptor(key) else {
        return Err(TopicConfigError::Unknown(key.to_string()));
    };
    let invalid = |reason| Err(TopicConfigError::Invalid { key: key.into(), value: value.into(), reason });
    match d.kind {
        Kind::Long(min) => match value.trim().parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
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

/// A config's effective value and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub key: &'static str,
    pub value: String,
    pub source: ConfigSource,
    pub enforced: bool,
}

impl Descriptor {
    fn resolve(&self, overrides: &BTreeMap<String, String>, broker: &Config) -> Described {
        let (value, source) = match (overrides.get(self.key), self.broker) {
            (Some(v), _) => (v.clone(), ConfigSource::TopicOverride),
            (None, Some((_, value))) => (value(broker), ConfigSource::StaticBroker),
            (None, None) => (self.default.to_string(), ConfigSource::Default),
        };
        Described { key: self.key, value, source, enforced: self.enforced }
    }
}

/// Every known config with its effective value and source.
pub fn describe(overrides: &BTreeMap<String, String>, broker: &Config) -> Vec<Described> {
    DESCRIPTORS.iter().map(|d| d.resolve(overrides, broker)).collect()
}

/// The broker settings that are topic configs' defaults, by their broker-level
/// names (DescribeConfigs of a broker).
pub fn broker_defaults(broker: &Config) -> impl Iterator<Item = (&'static str, String)> + '_ {
    DESCRIPTORS.iter().filter_map(|d| d.broker.map(|(name, value)| (name, value(broker))))
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
    /// `max.message.bytes` alone, for every produce request: one map lookup,
    /// no string made (what `resolve` gives for it).
    pub fn max_message_bytes(overrides: &BTreeMap<String, String>, broker: &Config) -> i64 {
        match overrides.get("max.message.bytes") {
            Some(v) => v.trim().parse().unwrap_or(-1),
            None => i64::try_from(broker.message_max_bytes).unwrap_or(i64::MAX),
        }
    }

    pub fn resolve(overrides: &BTreeMap<String, String>, broker: &Config) -> Self {
        // Values were validated when they were set; defaults are valid.
        let value =
            |key: &str| descriptor(key).map(|d| d.resolve(overrides, broker).value).unwrap_or_default();
        let long = |key: &str| value(key).trim().parse::<i64>().unwrap_or(-1);
        let policy = value("cleanup.policy");
        let has = |word: &str| policy.split(',').any(|w| w.trim() == word);
        // A compact-only topic keeps its data however old or large, as in
        // Kafka: deleting by time would drop the latest value of a key.
        let deletes = has("delete");
        Self {
            max_message_bytes: long("max.message.bytes"),
            retention_ms: if deletes { long("retention.ms") } else { -1 },
            retention_bytes: if deletes { long("retention.bytes") } else { -1 },
            compact: has("compact"),
            delete_retention_ms: long("delete.retention.ms"),
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
        assert_eq!(with("compact,delete").retention_ms, kafka_millis(broker.log_retention));
        assert_eq!(
            Effective::resolve(&BTreeMap::new(), &broker).retention_ms,
            kafka_millis(broker.log_retention)
        );
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
    fn every_default_is_valid_and_broker_defaults_are_sourced() {
        for d in DESCRIPTORS {
            assert!(validate(d.key, d.default).is_ok(), "{}", d.key);
        }
        let broker = Config::default();
        let described = describe(&BTreeMap::new(), &broker);
        let max = described.iter().find(|d| d.key == "max.message.bytes").unwrap();
        assert_eq!((max.value.as_str(), max.source), ("1048588", ConfigSource::StaticBroker));
        assert!(!described.iter().find(|d| d.key == "segment.bytes").unwrap().enforced);
        assert_eq!(Effective::resolve(&BTreeMap::new(), &broker).delete_retention_ms, 86_400_000);
        for o in [BTreeMap::new(), BTreeMap::from([("max.message.bytes".to_string(), "2000".to_string())])] {
            assert_eq!(
                Effective::max_message_bytes(&o, &broker),
                Effective::resolve(&o, &broker).max_message_bytes
            );
        }
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
