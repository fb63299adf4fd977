//! The catalogue of every event: names, current versions, encoding and upcasting.
//!
//! Payloads are MessagePack maps with field names (`rmp_serde::to_vec_named`), so a
//! new optional field (with `#[serde(default)]`) stays readable both ways. A change
//! that old payloads cannot be read as bumps the version: the old struct moves into
//! [`legacy`] and gains an upcaster, and its golden file stays in `tests/golden/`.

use crate::*;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("cannot encode {event_type}: {source}")]
    Encode {
        event_type: &'static str,
        source: rmp_serde::encode::Error,
    },
    #[error("cannot decode {event_type} v{version}: {source}")]
    Decode {
        event_type: String,
        version: u16,
        source: rmp_serde::decode::Error,
    },
    #[error("{event_type} v{version} is newer than this build understands (v{current})")]
    FutureVersion {
        event_type: String,
        version: u16,
        current: u16,
    },
}

macro_rules! catalogue {
    ($( $variant:ident = $version:literal ),* $(,)?) => {
        /// Every event Berth writes. The variant name is the event type on the wire.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $( $variant($variant), )*
        }

        $(
            impl From<$variant> for Event {
                fn from(event: $variant) -> Self {
                    Event::$variant(event)
                }
            }
        )*

        impl Event {
            /// Every event type with its current version.
            pub const TYPES: &'static [(&'static str, u16)] = &[$( (stringify!($variant), $version), )*];

            /// The event type, as carried in the `Berth-Event-Type` header.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $( Event::$variant(_) => stringify!($variant), )*
                }
            }

            /// The schema version this build writes.
            pub fn version(&self) -> u16 {
                match self {
                    $( Event::$variant(_) => $version, )*
                }
            }

            /// The MessagePack payload.
            pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
                let event_type = self.event_type();
                match self {
                    $( Event::$variant(event) => rmp_serde::to_vec_named(event), )*
                }
                .map_err(|source| CodecError::Encode { event_type, source })
            }

            /// Decodes a payload. `Ok(None)` for an event type this build does not know
            /// (written by a newer service), which readers skip.
            pub fn decode(event_type: &str, version: u16, payload: &[u8]) -> Result<Option<Event>, CodecError> {
                let decode_error = |source| CodecError::Decode {
                    event_type: event_type.to_owned(),
                    version,
                    source,
                };
                match event_type {
                    $(
                        stringify!($variant) => {
                            if version == $version {
                                return rmp_serde::from_slice::<$variant>(payload)
                                    .map(|event| Some(Event::$variant(event)))
                                    .map_err(decode_error);
                            }
                            if version > $version {
                                return Err(CodecError::FutureVersion {
                                    event_type: event_type.to_owned(),
                                    version,
                                    current: $version,
                                });
                            }
                            legacy::upcast(event_type, version, payload).map_err(decode_error)
                        }
                    )*
                    _ => Ok(None),
                }
            }
        }
    };
}

catalogue! {
    ClusterCreated = 1,
    ClusterUpdated = 1,
    ClusterDeleted = 1,
    TaskDefinitionRegistered = 1,
    TaskDefinitionDeregistered = 1,
    TaskDefinitionDeleted = 1,
    ResourceTagged = 1,
    ResourceUntagged = 1,
    ContainerInstanceRegistered = 1,
    ContainerInstanceStatusChanged = 1,
    ContainerInstanceDeregistered = 1,
    AgentConnected = 1,
    AgentDisconnected = 1,
    AttributesPut = 1,
    AttributesDeleted = 1,
    TaskRequested = 1,
    TaskPlaced = 1,
    TaskPlacementFailed = 1,
    TaskStopRequested = 1,
    TaskStateReported = 1,
}

/// Superseded versions and their upcasters. Empty until the first schema change:
/// every event is still at v1.
mod legacy {
    use super::Event;

    pub(super) fn upcast(
        _event_type: &str,
        _version: u16,
        _payload: &[u8],
    ) -> Result<Option<Event>, rmp_serde::decode::Error> {
        // No older versions exist yet; an unknown old version is malformed data.
        Err(rmp_serde::decode::Error::Syntax(
            "no upcaster for this version".to_owned(),
        ))
    }
}
