//! What an agent-gateway is told.

use std::fmt;
use std::time::Duration;

/// Options for [`crate::AgentGateway::build`].
#[derive(Clone)]
pub struct AgentGatewayOptions {
    /// The shared secret agents present in `RegisterInstance` (hosts are the untrusted edge).
    /// Must not be empty.
    pub token: String,
    /// `sqlite://...` or `postgres://...`.
    pub read_model_url: String,
    /// Drop the projected tables and replay the log from sequence 1 (acknowledgements are kept).
    pub rebuild: bool,
    /// Names this gateway in `AgentConnected`, so an operator can tell which replica holds an
    /// agent.
    pub gateway_id: String,
    /// Region of the ARNs handed to agents.
    pub region: String,
    /// Account id of the ARNs handed to agents.
    pub account_id: String,
    /// An agent that sends nothing for this long is disconnected; heartbeats go out three times
    /// per period, so a live agent always has something to answer.
    pub heartbeat_timeout: Duration,
    /// Largest WebSocket message accepted from an agent.
    pub max_message_bytes: usize,
}

impl AgentGatewayOptions {
    /// Options with the defaults: region `us-east-1`, account `000000000000`, 30 s heartbeat
    /// timeout, 4 MiB messages.
    pub fn new(token: impl Into<String>, read_model_url: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            read_model_url: read_model_url.into(),
            rebuild: false,
            gateway_id: "agent-gateway".to_owned(),
            region: "us-east-1".to_owned(),
            account_id: "000000000000".to_owned(),
            heartbeat_timeout: Duration::from_secs(30),
            max_message_bytes: 4 << 20,
        }
    }
}

impl fmt::Debug for AgentGatewayOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentGatewayOptions")
            .field("token", &"<redacted>")
            .field("read_model_url", &self.read_model_url)
            .field("rebuild", &self.rebuild)
            .field("gateway_id", &self.gateway_id)
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish()
    }
}
