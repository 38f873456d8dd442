//! How settings look outside (`-1` for none, milliseconds) and inside
//! (`Option`, `Duration`): the serde adapters and Kafka's wire forms.

use std::time::Duration;

/// Kafka's "-1 means none" settings: `-1` outside, `None` here.
pub(crate) mod minus_one_is_none {
    use serde::{Deserialize, Deserializer, Serializer};

    fn to_i64<S: Serializer>(v: Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX)))
    }

    fn from_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match i64::deserialize(d)? {
            -1 => Ok(None),
            v => u64::try_from(v).map(Some).map_err(|_| serde::de::Error::custom("must be -1 or at least 0")),
        }
    }

    /// Whole milliseconds, `-1` for forever.
    pub(crate) mod millis {
        use std::time::Duration;

        use serde::{Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            super::to_i64(v.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)), s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            super::from_i64(d).map(|v| v.map(Duration::from_millis))
        }
    }

    /// A byte count, `-1` for unlimited.
    pub(crate) mod bytes {
        use serde::{Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
            super::to_i64(*v, s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
            super::from_i64(d)
        }
    }
}

/// Kafka's wire form of a "-1 means none" value.
pub fn kafka_long(v: Option<u64>) -> i64 {
    v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// Kafka's wire form of an optional duration: milliseconds, `-1` for none.
pub fn kafka_millis(v: Option<Duration>) -> i64 {
    kafka_long(v.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}
