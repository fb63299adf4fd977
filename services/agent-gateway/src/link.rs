//! One agent's WebSocket, speaking frames: decoding what arrives (never panicking on what a
//! hostile host sends) and sending with a deadline, so a peer that stops reading cannot stall its
//! session forever.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use berth_agent_protocol::{AgentFrame, CloseMessage, GatewayFrame};
use futures::SinkExt;
use tracing::{debug, trace};

/// What arrived.
pub(crate) enum Incoming {
    Frame(AgentFrame),
    /// A WebSocket ping or pong: proof of life, nothing to handle.
    Alive,
    /// Not a frame of the protocol; why.
    Invalid(String),
    /// The connection is gone; why.
    Closed(String),
}

/// The connection could not take a frame.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("connection lost: {0}")]
    Lost(#[from] axum::Error),
    #[error("the agent has not read for {0:?}")]
    Stalled(Duration),
    #[error(transparent)]
    Encode(#[from] berth_agent_protocol::ProtocolError),
}

pub(crate) struct Link {
    socket: WebSocket,
    write_timeout: Duration,
}

impl Link {
    pub fn new(socket: WebSocket, write_timeout: Duration) -> Self {
        Self {
            socket,
            write_timeout,
        }
    }

    /// The next message. Cancel-safe.
    pub async fn recv(&mut self) -> Incoming {
        match self.socket.recv().await {
            None => Incoming::Closed("connection closed".to_owned()),
            Some(Err(error)) => Incoming::Closed(format!("connection failed: {error}")),
            Some(Ok(Message::Text(text))) => match AgentFrame::from_json(text.as_str()) {
                Ok(frame) => {
                    trace!(frame = frame.type_name(), "frame received");
                    Incoming::Frame(frame)
                }
                Err(error) => Incoming::Invalid(error.to_string()),
            },
            Some(Ok(Message::Binary(_))) => {
                Incoming::Invalid("binary messages are not part of the protocol".to_owned())
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Incoming::Alive,
            Some(Ok(Message::Close(_))) => Incoming::Closed("closed by the agent".to_owned()),
        }
    }

    /// Sends one frame, giving up after the write timeout.
    pub async fn send(&mut self, frame: &GatewayFrame) -> Result<(), SendError> {
        self.send_all(std::slice::from_ref(frame)).await
    }

    /// Sends frames in order with one flush (one write for the agent to read), giving up
    /// after the write timeout.
    pub async fn send_all(&mut self, frames: &[GatewayFrame]) -> Result<(), SendError> {
        let mut messages = Vec::with_capacity(frames.len());
        for frame in frames {
            messages.push(Message::text(frame.to_json()?));
            trace!(frame = frame.type_name(), "frame sent");
        }
        let socket = &mut self.socket;
        let write = async move {
            for message in messages {
                socket.feed(message).await?;
            }
            socket.flush().await
        };
        match tokio::time::timeout(self.write_timeout, write).await {
            Ok(sent) => Ok(sent?),
            Err(_) => Err(SendError::Stalled(self.write_timeout)),
        }
    }

    /// Tells the agent why with a `CloseMessage`, then closes the WebSocket. Best effort: the
    /// agent may already be gone.
    pub async fn close_with(mut self, reason: &str) {
        let frame = GatewayFrame::CloseMessage(CloseMessage {
            reason: reason.to_owned(),
        });
        if let Err(error) = self.send(&frame).await {
            debug!(%error, "could not send CloseMessage");
        }
        self.close().await;
    }

    /// Closes the WebSocket (after a final frame such as `RegistrationRefused`).
    pub async fn close(mut self) {
        let close = Message::Close(Some(CloseFrame {
            code: close_code::NORMAL,
            reason: "".into(),
        }));
        let _ = tokio::time::timeout(self.write_timeout, self.socket.send(close)).await;
    }
}
