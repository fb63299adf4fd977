//! Timestamps as awsJson sends them: epoch seconds as a JSON number (`1621198766.009`).
//!
//! Why: awsJson has no string timestamps; botocore and the SDKs parse a double of seconds with
//! millisecond precision. Use on `time::OffsetDateTime` or `std::time::SystemTime` fields:
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! #[derive(Serialize, Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct Task {
//!     #[serde(with = "berth_aws_protocol::json::epoch_seconds")]
//!     created_at: time::OffsetDateTime,
//!     #[serde(
//!         default,
//!         skip_serializing_if = "Option::is_none",
//!         with = "berth_aws_protocol::json::epoch_seconds::option"
//!     )]
//!     stopped_at: Option<std::time::SystemTime>,
//! }
//! ```
//!
//! Serializing truncates to milliseconds, as AWS does; deserializing accepts any JSON number
//! (integers too) and keeps microseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

/// A timestamp type that converts to and from microseconds since the Unix epoch.
pub trait EpochTime: Sized {
    /// Microseconds since 1970-01-01T00:00:00Z (negative before).
    fn to_epoch_micros(&self) -> i128;
    /// The timestamp of a number of microseconds, if the type can hold it.
    fn from_epoch_micros(micros: i128) -> Option<Self>;
}

impl EpochTime for time::OffsetDateTime {
    fn to_epoch_micros(&self) -> i128 {
        self.unix_timestamp_nanos().div_euclid(1_000)
    }

    fn from_epoch_micros(micros: i128) -> Option<Self> {
        time::OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1_000)?).ok()
    }
}

impl EpochTime for SystemTime {
    fn to_epoch_micros(&self) -> i128 {
        match self.duration_since(UNIX_EPOCH) {
            Ok(after) => i128::try_from(after.as_micros()).unwrap_or(i128::MAX),
            Err(before) => i128::try_from(before.duration().as_micros()).map_or(i128::MIN, |m| -m),
        }
    }

    fn from_epoch_micros(micros: i128) -> Option<Self> {
        let magnitude = Duration::from_micros(u64::try_from(micros.unsigned_abs()).ok()?);
        if micros >= 0 {
            UNIX_EPOCH.checked_add(magnitude)
        } else {
            UNIX_EPOCH.checked_sub(magnitude)
        }
    }
}

/// The epoch-seconds number of a timestamp, truncated to milliseconds.
pub fn to_f64<T: EpochTime>(value: &T) -> f64 {
    let millis = value.to_epoch_micros().div_euclid(1_000);
    millis as f64 / 1_000.0
}

/// The timestamp of an epoch-seconds number (`None` if not finite or out of range).
pub fn from_f64<T: EpochTime>(seconds: f64) -> Option<T> {
    if !seconds.is_finite() {
        return None;
    }
    let micros = (seconds * 1_000_000.0).round();
    // i64 covers ±292,000 years of microseconds; beyond that no timestamp type fits anyway.
    if micros.abs() > i64::MAX as f64 {
        return None;
    }
    T::from_epoch_micros(i128::from(micros as i64))
}

/// Serializes a timestamp as epoch seconds.
pub fn serialize<T: EpochTime, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(to_f64(value))
}

/// Deserializes a timestamp from epoch seconds.
pub fn deserialize<'de, T: EpochTime, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    let seconds = f64::deserialize(deserializer)?;
    from_f64(seconds).ok_or_else(|| {
        D::Error::custom(format!("{seconds} is not a valid epoch-seconds timestamp"))
    })
}

/// The same for `Option` fields (`null` or absent is `None`; pair with `#[serde(default)]`).
pub mod option {
    use super::*;

    /// Serializes an optional timestamp as epoch seconds or `null`.
    pub fn serialize<T: EpochTime, S: Serializer>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_some(&to_f64(value)),
            None => serializer.serialize_none(),
        }
    }

    /// Deserializes an optional timestamp from epoch seconds or `null`.
    pub fn deserialize<'de, T: EpochTime, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        match Option::<f64>::deserialize(deserializer)? {
            None => Ok(None),
            Some(seconds) => from_f64(seconds).map(Some).ok_or_else(|| {
                D::Error::custom(format!("{seconds} is not a valid epoch-seconds timestamp"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use time::OffsetDateTime;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shape {
        #[serde(with = "super")]
        created_at: OffsetDateTime,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "super::option"
        )]
        stopped_at: Option<SystemTime>,
    }

    #[test]
    fn serializes_like_ecs() {
        let created_at = OffsetDateTime::from_unix_timestamp_nanos(1_621_198_766_009_000_000)
            .expect("valid time");
        let shape = Shape {
            created_at,
            stopped_at: None,
        };
        assert_eq!(
            serde_json::to_string(&shape).expect("serializes"),
            r#"{"createdAt":1621198766.009}"#
        );
        let stopped = UNIX_EPOCH + Duration::from_millis(1_621_198_800_500);
        let shape = Shape {
            created_at,
            stopped_at: Some(stopped),
        };
        assert_eq!(
            serde_json::to_string(&shape).expect("serializes"),
            r#"{"createdAt":1621198766.009,"stoppedAt":1621198800.5}"#
        );
    }

    #[test]
    fn round_trips_and_accepts_integers_and_null() {
        let shape: Shape = serde_json::from_str(r#"{"createdAt":1621198766.009,"stoppedAt":null}"#)
            .expect("parses");
        assert_eq!(
            shape.created_at.unix_timestamp_nanos(),
            1_621_198_766_009_000_000
        );
        assert_eq!(shape.stopped_at, None);
        let shape: Shape =
            serde_json::from_str(r#"{"createdAt":1621198766,"stoppedAt":1621198767}"#)
                .expect("parses integers");
        assert_eq!(shape.created_at.unix_timestamp(), 1_621_198_766);
        assert_eq!(
            shape.stopped_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_621_198_767))
        );
        let text = serde_json::to_string(&shape).expect("serializes");
        let again: Shape = serde_json::from_str(&text).expect("parses again");
        assert_eq!(again, shape);
    }

    #[test]
    fn rejects_strings_and_absurd_numbers() {
        assert!(serde_json::from_str::<Shape>(r#"{"createdAt":"2021-05-16"}"#).is_err());
        assert!(serde_json::from_str::<Shape>(r#"{"createdAt":1e300}"#).is_err());
        assert!(from_f64::<SystemTime>(f64::NAN).is_none());
        assert!(from_f64::<SystemTime>(-1.5).is_some());
    }
}
